"""Validate loaded objects whose native code trusts their arrays (pure: no Django).

skops can check that a file names only allowed types; it cannot check that
their content is sane. A few scikit-learn and scipy types hold raw indices
that compiled code follows without bounds checks, so a crafted file loads
fine and then reads or writes outside its arrays at the first ``predict``:

- ``sklearn.tree._tree.Tree`` (decision trees, forests, AdaBoost, bagging,
  gradient boosting): child and feature indices per node, a node count that
  ``__setstate__`` takes as given, and a maximum depth that sizes
  ``decision_path``'s buffers;
- HistGradientBoosting's ``TreePredictor``: its own node records, indices into
  two bitset arrays, and features looked up in the bin mapper's categories;
- gradient boosting feeds its trees to ``predict_stages`` without the trees'
  own checks, writing column ``k`` of the raw predictions for every column of
  ``estimators_``;
- scipy's compressed sparse matrices: ``load_npz`` checks their shape but not
  their indices.

``validate_loaded`` walks every object reachable from the loaded model and
checks each of these before the model is returned to anyone, so before any
prediction. skops builds a ``Tree`` from its constructor arguments and then
``__setstate__``, which copies the node and value arrays after checking their
shapes against each other but not the node count; so the node count is
compared with the capacity first, before any array is read.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

import numpy as np


class StateRejected(Exception):
    """A loaded object's state is inconsistent; the message says where."""


_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic, range, slice)
_OPAQUE = (type, ModuleType, FunctionType, BuiltinFunctionType, np.ufunc)


def reachable(root: Any) -> Iterator[Any]:
    """Every object reachable from ``root`` through containers and attributes.

    Follows what Python's garbage collector sees (instance dicts, containers,
    partials, bound methods) plus the items of object arrays; never enters
    classes, modules or functions (that would be the whole interpreter).
    Iterative: a deep model cannot exhaust the stack.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _LEAVES + _OPAQUE):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                stack.extend(obj.ravel(order="K").tolist())
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            stack.extend(gc.get_referents(obj))


def _tree_structure(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, where: str) -> int:
    """Check that the nodes form one tree rooted at node 0; return its depth.

    Every internal node's children must come after it (so no walk can loop),
    lie inside the node array, and be nobody else's child; with exactly
    ``n - 1`` child links every node is then reachable from the root.
    """
    n = left.shape[0]
    parents = np.flatnonzero(~leaf)
    lefts, rights = left[parents], right[parents]
    outside = (lefts <= parents) | (rights <= parents) | (lefts >= n) | (rights >= n)
    if outside.any():
        node = int(parents[np.argmax(outside)])
        raise StateRejected(
            f"{where}: node {node} has a child index outside its {n} nodes "
            f"(left {int(left[node])}, right {int(right[node])}) or before itself"
        )
    children = np.concatenate([lefts, rights])
    if children.size != n - 1 or np.unique(children).size != children.size:
        raise StateRejected(f"{where}: its {n} nodes do not form a single tree")
    # Depth by pointer jumping (O(n log n)): each node's distance to its
    # current ancestor doubles its reach every round.
    ancestor = np.full(n, -1, dtype=np.int64)
    ancestor[lefts] = parents
    ancestor[rights] = parents
    depth = (ancestor >= 0).astype(np.int64)
    while True:
        has = np.flatnonzero(ancestor >= 0)
        if has.size == 0:
            break
        depth[has] = depth[has] + depth[ancestor[has]]
        ancestor[has] = ancestor[ancestor[has]]
    return int(depth.max())


def check_tree(tree: Any, where: str = "a decision tree") -> None:
    """A scikit-learn ``Tree`` whose every index stays inside its arrays."""
    from sklearn.tree._tree import TREE_LEAF

    # Read before any array: the node and value arrays are views of
    # ``node_count`` records over memory allocated for ``capacity``.
    node_count, capacity = int(tree.node_count), int(tree.capacity)
    if node_count < 1 or node_count != capacity:
        raise StateRejected(f"{where}: it claims {node_count} nodes but holds {capacity}")
    n_features, n_outputs, max_classes = (
        int(tree.n_features),
        int(tree.n_outputs),
        int(tree.max_n_classes),
    )
    if n_features < 1 or n_outputs < 1 or max_classes < 1:
        raise StateRejected(f"{where}: it has no features, outputs or classes")
    state = tree.__getstate__()
    nodes, values = state["nodes"], state["values"]
    if nodes.shape != (node_count,) or values.shape != (node_count, n_outputs, max_classes):
        raise StateRejected(f"{where}: its value array does not match its nodes and outputs")
    left = nodes["left_child"].astype(np.int64)
    right = nodes["right_child"].astype(np.int64)
    leaf = left == TREE_LEAF
    if (right[leaf] != TREE_LEAF).any():
        raise StateRejected(f"{where}: a node has a right child but no left child")
    depth = _tree_structure(left, right, leaf, where)
    feature = nodes["feature"][~leaf]
    outside = feature[(feature < 0) | (feature >= n_features)]
    if outside.size:
        raise StateRejected(
            f"{where}: a split uses feature {int(outside[0])} of its {n_features} features"
        )
    # decision_path sizes its buffers from max_depth.
    if depth != int(tree.max_depth):
        raise StateRejected(f"{where}: it claims depth {int(tree.max_depth)} but is {depth} deep")


def check_predictor(
    predictor: Any,
    where: str = "a histogram gradient boosting tree",
    *,
    n_features: int | None = None,
    categorical: np.ndarray | None = None,
) -> None:
    """A HistGradientBoosting ``TreePredictor`` whose every index stays inside its arrays."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    attrs = vars(predictor)
    nodes = attrs.get("nodes")
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.size < 1:
        raise StateRejected(f"{where}: it has no node array")
    if nodes.dtype != PREDICTOR_RECORD_DTYPE:
        raise StateRejected(f"{where}: its nodes have an unexpected record layout")
    sizes = []
    for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        bitsets = attrs.get(name)
        if (
            not isinstance(bitsets, np.ndarray)
            or bitsets.ndim != 2
            or bitsets.shape[1] != 8
            or bitsets.dtype != np.uint32
        ):
            raise StateRejected(f"{where}: its {name} is not an (n, 8) array of uint32")
        sizes.append(bitsets.shape[0])
    leaf = nodes["is_leaf"] != 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    _tree_structure(left, right, leaf, where)
    internal = ~leaf
    feature = nodes["feature_idx"][internal]
    limit = n_features if n_features is not None else np.iinfo(np.int64).max
    outside = feature[(feature < 0) | (feature >= limit)]
    if outside.size:
        raise StateRejected(
            f"{where}: a split uses feature {int(outside[0])} of the model's {n_features}"
        )
    split_on_category = internal & (nodes["is_categorical"] != 0)
    if split_on_category.any():
        if int(nodes["bitset_idx"][split_on_category].max()) >= min(sizes):
            raise StateRejected(f"{where}: a categorical split points outside its bitsets")
        if (
            categorical is not None
            and not categorical[nodes["feature_idx"][split_on_category]].all()
        ):
            raise StateRejected(
                f"{where}: a categorical split uses a feature the model does not treat as "
                "categorical"
            )


def _fitted(obj: Any, name: str) -> Any:
    # Instance attributes only: a property of an allowed class is never run here.
    return vars(obj).get(name)


def _check_decision_tree(estimator: Any, where: str) -> None:
    from sklearn.tree._tree import Tree

    tree = _fitted(estimator, "tree_")
    if tree is None:
        return
    if not isinstance(tree, Tree):
        raise StateRejected(f"{where}: its tree_ is not a tree")
    n_features = _fitted(estimator, "n_features_in_")
    if n_features is not None and int(tree.n_features) != int(n_features):
        raise StateRejected(
            f"{where}: its tree reads {int(tree.n_features)} features but the estimator "
            f"takes {int(n_features)}"
        )
    n_outputs = _fitted(estimator, "n_outputs_")
    if n_outputs is not None and int(tree.n_outputs) != int(n_outputs):
        raise StateRejected(f"{where}: its tree has a different number of outputs")


def _check_gradient_boosting(model: Any, where: str) -> None:
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.tree import DecisionTreeRegressor

    stages = _fitted(model, "estimators_")
    if stages is None:
        return
    if not isinstance(stages, np.ndarray) or stages.ndim != 2 or not stages.dtype.hasobject:
        raise StateRejected(f"{where}: its estimators_ is not a 2-D array of trees")
    per_iteration = int(_fitted(model, "n_trees_per_iteration_") or 0)
    n_features = _fitted(model, "n_features_in_")
    # predict_stages writes column k of the raw predictions for every column of
    # estimators_, without bounds checks.
    if stages.shape[1] != per_iteration:
        raise StateRejected(
            f"{where}: it has {stages.shape[1]} trees per stage but {per_iteration} outputs"
        )
    for tree in stages.flat:
        if not isinstance(tree, DecisionTreeRegressor) or _fitted(tree, "tree_") is None:
            raise StateRejected(f"{where}: a stage is not a fitted regression tree")
        inner = tree.tree_
        if n_features is None or int(inner.n_features) != int(n_features):
            raise StateRejected(f"{where}: a stage reads a different number of features")
        if int(inner.n_outputs) != 1 or int(inner.max_n_classes) != 1:
            raise StateRejected(f"{where}: a stage is not a single-output regression tree")
    # The initial raw predictions must be as wide as estimators_: only the
    # default initial estimators (or zeros) are known to be.
    init = _fitted(model, "init_")
    loss = _fitted(model, "_loss")
    if isinstance(init, str) and init == "zero":
        return
    if isinstance(init, DummyClassifier):
        # "prior" answers predict_proba with one column per entry of class_prior_.
        classes = _fitted(init, "class_prior_")
        n_classes = _fitted(model, "n_classes_")
        multiclass = bool(getattr(loss, "is_multiclass", False))
        if (
            _fitted(init, "_strategy") != "prior"
            or int(_fitted(init, "n_outputs_") or 0) != 1
            or np.ndim(classes) != 1
            or n_classes is None
            or len(classes) != int(n_classes)
            or multiclass != (per_iteration > 1)
            or (multiclass and per_iteration != len(classes))
        ):
            raise StateRejected(f"{where}: its initial estimator does not match its classes")
        return
    if isinstance(init, DummyRegressor):
        constant = _fitted(init, "constant_")
        if (
            int(_fitted(init, "n_outputs_") or 0) != 1
            or per_iteration != 1
            or np.size(constant) != 1
        ):
            raise StateRejected(f"{where}: its initial estimator does not match its outputs")
        return
    raise StateRejected(
        f"{where}: only 'zero' or the default initial estimator is accepted, not "
        f"{type(init).__name__}"
    )


def _check_hgb_preprocessor(model: Any, n_features: int, where: str) -> None:
    """The categorical preprocessor must keep every column (the trees index them)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
    from sklearn.utils.validation import check_array

    preprocessor = _fitted(model, "_preprocessor")
    if preprocessor is None:
        return
    if not isinstance(preprocessor, ColumnTransformer):
        raise StateRejected(f"{where}: its categorical preprocessor is not a column transformer")
    covered = np.zeros(n_features, dtype=np.int64)
    for _name, transformer, columns in _fitted(preprocessor, "transformers_") or []:
        selected = np.zeros(n_features, dtype=bool)
        picked = np.asarray(columns)
        if picked.dtype == bool and picked.shape == (n_features,):
            selected = picked.copy()
        elif picked.size and picked.dtype.kind in "iu":
            if picked.min() < 0 or picked.max() >= n_features:
                raise StateRejected(f"{where}: its preprocessor selects unknown columns")
            selected[picked] = True
        elif picked.size:
            raise StateRejected(f"{where}: its preprocessor selects columns in an unexpected way")
        count = int(selected.sum())
        if isinstance(transformer, str) and transformer == "drop":
            if count:
                raise StateRejected(f"{where}: its preprocessor drops columns the trees use")
            continue
        if isinstance(transformer, OrdinalEncoder):
            if int(_fitted(transformer, "n_features_in_") or -1) != count:
                raise StateRejected(f"{where}: its category encoder has the wrong width")
        elif isinstance(transformer, FunctionTransformer):
            func = transformer.func
            if not (isinstance(func, functools.partial) and func.func is check_array):
                raise StateRejected(f"{where}: its preprocessor runs an unexpected function")
        elif not (isinstance(transformer, str) and transformer == "passthrough"):
            raise StateRejected(f"{where}: its preprocessor holds an unexpected transformer")
        covered += selected
    if not (covered == 1).all():
        raise StateRejected(f"{where}: its preprocessor does not keep every column once")


def _check_hist_gradient_boosting(model: Any, where: str) -> None:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    predictors = _fitted(model, "_predictors")
    if predictors is None:
        return
    n_features = int(_fitted(model, "n_features_in_") or 0)
    if n_features < 1:
        raise StateRejected(f"{where}: it has no features")
    mapper = _fitted(model, "_bin_mapper")
    categorical = _fitted(mapper, "is_categorical_") if mapper is not None else None
    if categorical is not None:
        categorical = np.asarray(categorical)
        if categorical.shape != (n_features,):
            raise StateRejected(f"{where}: its bin mapper describes a different number of features")
        categorical = categorical.astype(bool)
    _check_hgb_preprocessor(model, n_features, where)
    for iteration in predictors:
        for predictor in iteration:
            if not isinstance(predictor, TreePredictor):
                raise StateRejected(f"{where}: an iteration holds something other than a tree")
            check_predictor(predictor, where, n_features=n_features, categorical=categorical)


def _check_sparse(matrix: Any, where: str) -> None:
    if matrix.format not in ("csr", "csc"):
        raise StateRejected(f"{where}: sparse {matrix.format} matrices are not accepted")
    try:
        matrix.check_format(full_check=True)
    except (ValueError, TypeError) as exc:
        raise StateRejected(f"{where}: {exc}") from None


def validate_loaded(root: Any) -> int:
    """Check every index-bearing object reachable from ``root``; return how many."""
    import scipy.sparse as sp
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._classes import BaseDecisionTree
    from sklearn.tree._tree import Tree

    checked = 0
    for obj in reachable(root):
        where = f"{type(obj).__name__}"
        if isinstance(obj, Tree):
            check_tree(obj, "a decision tree")
        elif isinstance(obj, TreePredictor):
            check_predictor(obj)
        elif sp.issparse(obj):
            _check_sparse(obj, "a sparse matrix")
        elif isinstance(obj, BaseDecisionTree):
            _check_decision_tree(obj, where)
        elif isinstance(obj, BaseGradientBoosting):
            _check_gradient_boosting(obj, where)
        elif isinstance(obj, BaseHistGradientBoosting):
            _check_hist_gradient_boosting(obj, where)
        else:
            continue
        checked += 1
    return checked
