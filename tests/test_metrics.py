import json

import numpy as np
import pytest

import fnn
from fnn.metrics import confusion_matrix, evaluate, most_confused, precision_recall, report

RNG = np.random.default_rng(0)


def test_confusion_matrix_matches_double_loop():
    labels = RNG.integers(0, 7, 500)
    predictions = RNG.integers(0, 7, 500)
    expected = np.zeros((7, 7), dtype=np.int64)
    for true in range(7):
        for pred in range(7):
            expected[true, pred] = np.sum((labels == true) & (predictions == pred))
    confusion = confusion_matrix(labels, predictions, 7)
    assert confusion.dtype == np.int64
    np.testing.assert_array_equal(confusion, expected)


def test_confusion_matrix_keeps_absent_classes_and_checks_range():
    confusion = confusion_matrix(np.array([0, 0]), np.array([0, 1]), 4)
    assert confusion.shape == (4, 4)
    assert confusion.sum() == 2
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        confusion_matrix(np.array([0, 4]), np.array([0, 1]), 4)


def test_precision_recall_by_hand_with_a_class_never_predicted():
    # rows = true, columns = predicted; class 2 is never predicted, class 3 has no samples
    confusion = np.array(
        [
            [3, 1, 0, 0],
            [2, 4, 0, 1],
            [1, 1, 0, 0],
            [0, 0, 0, 0],
        ]
    )
    precision, recall = precision_recall(confusion)
    np.testing.assert_allclose(precision, [3 / 6, 4 / 6, 0.0, 0.0])
    np.testing.assert_allclose(recall, [3 / 4, 4 / 7, 0.0, 0.0])
    assert not np.isnan(precision).any() and not np.isnan(recall).any()


def test_most_confused_order_and_zero_counts():
    confusion = np.array([[50, 2, 7], [9, 40, 0], [7, 1, 30]])
    assert most_confused(confusion, k=3) == [(1, 0, 9), (0, 2, 7), (2, 0, 7)]
    assert most_confused(confusion, k=10) == [(1, 0, 9), (0, 2, 7), (2, 0, 7), (0, 1, 2), (2, 1, 1)]
    assert most_confused(np.diag([5, 6])) == []


@pytest.mark.parametrize(
    "activation, loss", [("tanh", "cross_entropy"), ("relu", "mean_squared_error")]
)
@pytest.mark.parametrize("batch_size", [7, 64, 10_000])
def test_evaluate_matches_full_batch_loss_and_forward(activation, loss, batch_size):
    params = fnn.init_mlp([20, 8, 5], dtype=np.float64, seed=1)
    x = RNG.standard_normal((101, 20))
    y = RNG.integers(0, 5, 101)
    result = evaluate(params, x, y, activation=activation, loss=loss, batch_size=batch_size)
    expected_loss = fnn.loss_value(params, x, y, activation=activation, loss=loss)
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-6)
    predictions = fnn.forward(params, x, activation=activation).argmax(axis=1)
    np.testing.assert_array_equal(result["predictions"], predictions)
    assert result["predictions"].dtype == np.int64
    assert result["accuracy"] == pytest.approx(np.mean(predictions == y))
    np.testing.assert_array_equal(result["confusion"], confusion_matrix(y, predictions, 5))
    precision, recall = precision_recall(result["confusion"])
    np.testing.assert_array_equal(result["precision"], precision)
    np.testing.assert_array_equal(result["recall"], recall)


def test_evaluate_accepts_one_hot_targets_and_rejects_bad_input():
    params = fnn.init_mlp([20, 8, 5], dtype=np.float64)
    x = RNG.standard_normal((30, 20))
    y = RNG.integers(0, 5, 30)
    by_label = evaluate(params, x, y, batch_size=8)
    by_one_hot = evaluate(params, x, np.eye(5)[y], batch_size=8)
    assert by_one_hot["loss"] == pytest.approx(by_label["loss"], rel=1e-12)
    np.testing.assert_array_equal(by_one_hot["confusion"], by_label["confusion"])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(params, x, y, batch_size=0)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        evaluate(params, x, np.full(30, 5))
    with pytest.raises(ValueError, match="same"):
        evaluate(params, x, y[:-1])


def test_report_is_json_ready_and_names_classes():
    params = fnn.init_mlp([20, 8, 5], dtype=np.float64)
    x = RNG.standard_normal((60, 20))
    y = np.arange(60) % 5
    names = ["ant", "bee", "cat", "dog", "eel"]
    result = evaluate(params, x, y)
    out = json.loads(json.dumps(report(result, names)))
    assert out["loss"] == pytest.approx(result["loss"])
    assert out["accuracy"] == pytest.approx(result["accuracy"])
    assert [row["class"] for row in out["per_class"]] == names
    assert [row["support"] for row in out["per_class"]] == [12] * 5
    assert out["per_class"][2]["recall"] == pytest.approx(result["recall"][2])
    assert out["confusion"] == result["confusion"].tolist()
    expected_pairs = most_confused(result["confusion"])
    assert [(p["true"], p["predicted"], p["count"]) for p in out["most_confused"]] == [
        (names[t], names[p], c) for t, p, c in expected_pairs
    ]
    with pytest.raises(ValueError, match="class names"):
        report(result, names[:4])
