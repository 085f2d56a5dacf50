"""Fit and evaluate the verdict fusion (``authentiq fit-fusion``, ``authentiq evaluate-fusion``).

Numpy only. Items and references run through the service's own preprocessing and backend.

* References: genuine items, the same number per product — by default the set the service ships
  (``reference_data/``), so the fitted parameters match what the default deployment compares with.
* Fit items: :data:`~authentiq.modelling.datasets.FUSION_SEED_BASE`, never used in training,
  calibration or evaluation. A two-feature logistic regression (classifier logit, mean top-k
  similarity) gives the fused probability; the band is chosen as the classifier's was (narrowest
  band reaching the target decided accuracy within the inconclusive cap); ``min_similarity`` and
  ``mismatch_margin`` are set from the genuine fit items so that they flag at most 0.5% of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from authentiq.contract.model_spec import FusionParams, ModelSpec, softmax_fake
from authentiq.errors import ModelContractError
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling import datasets
from authentiq.modelling.evaluation import Metrics, choose_band, evaluate
from authentiq.modelling.model_eval import run_model
from authentiq.modelling.training.metadata import write_prop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One set of items as the fusion sees it."""

    p: np.ndarray  # classifier p(counterfeit) [N]
    embedding: np.ndarray  # [N, D]
    groups: np.ndarray  # product index [N]
    labels: np.ndarray  # 1 = counterfeit [N]


def score(backend: OnnxRuntimeBackend, ts: datasets.TileSet) -> Scored:
    logits, embedding, _ = run_model(backend, ts)
    return Scored(softmax_fake(logits), embedding, ts.groups, ts.labels)


def similarities(items: Scored, refs: Scored, claimed: np.ndarray, k: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: (best, mean of top k) similarity to the claimed product's references, and the
    best similarity to any other product's."""
    sims = items.embedding @ refs.embedding.T
    best, mean_k, other = (np.full(len(claimed), -1.0) for _ in range(3))
    for g in np.unique(refs.groups):
        cols = refs.groups == g
        s = np.sort(sims[:, cols], axis=1)[:, ::-1]
        mine = claimed == g
        best[mine] = s[mine, 0]
        mean_k[mine] = s[mine, :k].mean(axis=1)
        other[~mine] = np.maximum(other[~mine], s[~mine, 0])
    return best, mean_k, other


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression; returns [intercept, w...]."""
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-a @ w))
        grad = a.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = a.T @ (a * (p * (1 - p))[:, None]) + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fused_p(params: FusionParams, p: np.ndarray, mean_k: np.ndarray) -> np.ndarray:
    z = params.intercept + params.w_logit * _logit(p) + params.w_similarity * mean_k
    return np.asarray(1 / (1 + np.exp(-z)))


def fit(items: Scored, refs: Scored, *, k: int = 5, fitted_on: str = "") -> FusionParams:
    """Fit on the items whose product has references (the service fuses no other: without
    references an item is never called authentic)."""
    covered = np.isin(items.groups, np.unique(refs.groups))
    if len(np.unique(items.labels[covered])) < 2:
        raise ModelContractError("the fusion needs authentic and counterfeit items of products "
                                 "that have references; these items have not")
    if not covered.all():
        fitted_on += f" ({int(covered.sum())} of the items have references of their product)"
        items = Scored(items.p[covered], items.embedding[covered], items.groups[covered],
                       items.labels[covered])
    best, mean_k, other = similarities(items, refs, items.groups, k)
    w = logistic_fit(np.column_stack([_logit(items.p), mean_k]), items.labels.astype(np.float64))
    genuine = items.labels == 0
    floor = float(np.quantile(best[genuine], 0.005))
    margin = max(0.02, float(np.quantile((other - best)[genuine], 0.995)))
    draft = FusionParams(intercept=float(w[0]), w_logit=float(w[1]), w_similarity=float(w[2]), k=k,
                         authentic_below=0.5, counterfeit_above=0.5, min_similarity=round(floor, 4),
                         mismatch_margin=round(margin, 4), fitted_on=fitted_on)
    lo, hi = choose_band(items.labels, fused_p(draft, items.p, mean_k))
    return draft.model_copy(update={"authentic_below": round(lo, 4), "counterfeit_above": round(hi, 4)})


@dataclass(frozen=True)
class FusionReport:
    classifier: Metrics
    fused: Metrics
    genuine_flagged: float  # genuine items with a correct claim flagged by floor or mismatch
    wrong_claim_flagged: float  # genuine items claimed as another product, flagged

    def table(self) -> str:
        rows = [("classifier alone", self.classifier), ("fused with references", self.fused)]
        lines = ["| verdict from | items | accuracy | ROC AUC | decided acc. | inconclusive |",
                 "|---|---|---|---|---|---|"]
        lines += [f"| {n} | {m.items} | {m.accuracy:.2%} | {m.roc_auc:.4f} | "
                  f"{m.decided_accuracy:.2%} | {m.inconclusive_share:.2%} |" for n, m in rows]
        lines += ["", f"- genuine items with the right claim flagged by a reference rule: "
                      f"{self.genuine_flagged:.2%}",
                  f"- genuine items claimed as another product, flagged (model mismatch or "
                  f"below the similarity floor): {self.wrong_claim_flagged:.2%}"]
        return "\n".join(lines)


def evaluate_fusion(spec: ModelSpec, items: Scored, refs: Scored) -> FusionReport:
    f = spec.fusion
    if f is None:
        raise ValueError("the model carries no fusion parameters; run authentiq fit-fusion first")
    t = spec.thresholds
    clf = evaluate(items.labels, items.p, t.authentic_below, t.counterfeit_above)
    best, mean_k, other = similarities(items, refs, items.groups, f.k)
    p = fused_p(f, items.p, mean_k)
    flagged = (best < f.min_similarity) | ((other - best >= f.mismatch_margin) & (other >= f.min_similarity))
    # Fused metrics with the rules on: a flagged item is never decided authentic.
    decided_p = np.where(flagged & (p < f.authentic_below), f.authentic_below, p)
    fused = evaluate(items.labels, decided_p, f.authentic_below, f.counterfeit_above)
    fused = Metrics(fused.items, float(((p >= 0.5) == items.labels.astype(bool)).mean()),
                    fused.roc_auc, fused.decided_accuracy, fused.inconclusive_share,
                    f.authentic_below, f.counterfeit_above)
    genuine = items.labels == 0
    n_products = int(refs.groups.max()) + 1
    wrong = (items.groups + 1) % n_products  # claim the next product in the catalogue
    wbest, _, wother = similarities(items, refs, wrong, f.k)
    wflag = (wbest < f.min_similarity) | ((wother - wbest >= f.mismatch_margin)
                                          & (wother >= f.min_similarity))
    return FusionReport(clf, fused, float(flagged[genuine].mean()), float(wflag[genuine].mean()))


def write_fusion(model_path: Path, params: FusionParams) -> None:
    write_prop(model_path, "fusion", params)
