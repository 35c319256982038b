"""NCPLR and GL-NCPLR (docs/methods.md): Cluster Contrast plus a classifier per
branch, re-initialised from the centroids at each clustering and trained towards refined soft labels
built from the pseudo-label and the neighbours' predictions; with part branches (GL-NCPLR) the
branches also exchange their ensembles."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...cluster.distances import JaccardDistance
from ...utils import comm
from ..layers import ClusterClassifier
from ..losses.refined_labels import NEIGHBOR_WEIGHTS, exchange_labels, first_draws, neighbor_ensemble, \
    neighbor_graph, refined_targets
from ..memory import build_memory
from .base import ReIDMethod
from .build import META_ARCH_REGISTRY
from .cluster_contrast import cluster_centroids
from .encoder import Encoder

_SCOPES = ("dataset", "batch")
_GRAPHS = ("clustering", "branch")


class _BranchFeatures(nn.Module):
    """Eval-mode clustering features of a part model: the unit features of all branches side by side,
    [B, (1+P)·d], global first (what ``MixedJaccardDistance`` and ``reset_pseudo_labels`` take)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.train(encoder.training)

    def forward(self, batch):
        images = batch["images"].to(next(self.encoder.parameters()).device, non_blocking=True)
        bn = self.encoder.branch_neck(self.encoder.branch_pooled(images))
        return F.normalize(bn, dim=2).flatten(1)


def _stack_graphs(graphs):
    """Block-diagonal union of CSR graphs over M nodes each: graph b's nodes become b·M … (b+1)·M − 1."""
    m = len(graphs[0][0]) - 1
    indptr = [graphs[0][0]]
    for g in graphs[1:]:
        indptr.append(g[0][1:] + indptr[-1][-1])
    indices = torch.cat([g[1] + b * m for b, g in enumerate(graphs)])
    return torch.cat(indptr), indices, torch.cat([g[2] for g in graphs])


@META_ARCH_REGISTRY.register()
class NCPLR(ReIDMethod):
    """Per branch b (global, then MODEL.HEADS.NUM_PARTS parts): BN features f_b, a cluster memory and
    a classifier z_b = W_b·f_b. With λ2 = MODEL.NCPLR.PART_LOSS_WEIGHT (global weight 1 − λ2 when
    there are parts, else 1):

        L = w_1 · Σ_b λ_b·InfoNCE_b + w_2 · Σ_b λ_b·CE(ỹ_b, z_b)

    (``BranchContrastLoss`` and ``RefinedLabelLoss`` with their MODEL.LOSSES.WEIGHTS w_1, w_2)

    where ỹ_b is the refined target of ``refined_labels`` (ALPHA for the global branch, PART_ALPHA for
    the parts), after the global↔local exchange when MODEL.NCPLR.EXCHANGE. Eval mode returns the global
    unit feature (retrieval); ``cluster_extractor`` gives all branches' features for clustering."""

    resizable = ("graph_indptr", "graph_indices", "graph_dist", "bank")
    default_losses = {"BranchContrastLoss": 1.0, "RefinedLabelLoss": 1.0}

    def __init__(self, cfg) -> None:
        super().__init__()
        c = cfg.MODEL.NCPLR
        if c.NEIGHBOR_WEIGHT not in NEIGHBOR_WEIGHTS:
            raise ValueError(f"MODEL.NCPLR.NEIGHBOR_WEIGHT must be one of {NEIGHBOR_WEIGHTS}, "
                             f"got {c.NEIGHBOR_WEIGHT!r}")
        if c.NEIGHBOR_SCOPE not in _SCOPES:
            raise ValueError(f"MODEL.NCPLR.NEIGHBOR_SCOPE must be one of {_SCOPES}, got {c.NEIGHBOR_SCOPE!r}")
        if c.NEIGHBOR_GRAPH not in _GRAPHS:
            raise ValueError(f"MODEL.NCPLR.NEIGHBOR_GRAPH must be one of {_GRAPHS}, got {c.NEIGHBOR_GRAPH!r}")
        if cfg.SOLVER.FORWARD_BATCH_SIZE:
            raise ValueError("NCPLR looks up the batch samples' neighbours by dataset index, which the "
                             "chunked gradient accumulation does not pass: set SOLVER.FORWARD_BATCH_SIZE 0")
        self.encoder = Encoder(cfg)
        self.num_branches = 1 + self.encoder.num_parts
        if self.num_branches > 1 and cfg.CLUSTER.DISTANCE != "MixedJaccardDistance":
            raise ValueError(f"MODEL.HEADS.NUM_PARTS={self.encoder.num_parts} gives the clustering features "
                             f"of all branches side by side: set CLUSTER.DISTANCE MixedJaccardDistance "
                             f"(got {cfg.CLUSTER.DISTANCE})")
        dim = self.encoder.feat_dim
        self.memories = nn.ModuleList(build_memory(cfg, dim) for _ in range(self.num_branches))
        self.classifiers = nn.ModuleList(ClusterClassifier(dim) for _ in range(self.num_branches))
        # CLASSIFIER_ROWS > 0: fixed-size classifiers as the released code (N(0, 0.001), its nn.Linear
        # initialisation); the first C rows are overwritten at each clustering, the logits cut to C
        self.classifier_rows, self.reset_moments = c.CLASSIFIER_ROWS, c.RESET_CLASSIFIER_MOMENTS
        if self.classifier_rows < 0:
            raise ValueError(f"MODEL.NCPLR.CLASSIFIER_ROWS must be >= 0, got {self.classifier_rows}")
        if not self.reset_moments and not self.classifier_rows:
            raise ValueError("MODEL.NCPLR.RESET_CLASSIFIER_MOMENTS False keeps the classifiers' optimiser state "
                             "across clusterings, which needs rows that persist: set MODEL.NCPLR.CLASSIFIER_ROWS "
                             "> 0 (the released code: 3000)")
        for clf in self.classifiers if self.classifier_rows else ():
            clf.weight.data = torch.randn(self.classifier_rows, dim) * 0.001
        lam = c.PART_LOSS_WEIGHT if self.num_branches > 1 else 0.0
        self.branch_weights = [1.0 - lam] + [lam] * (self.num_branches - 1)
        self.alphas = [c.ALPHA] + [c.PART_ALPHA] * (self.num_branches - 1)
        self.exchange = c.EXCHANGE and self.num_branches > 1
        self.kl_temp = c.KL_TEMP
        self.neighbor_eps = [c.NEIGHBOR_EPS] + [c.PART_NEIGHBOR_EPS] * (self.num_branches - 1)
        self.neighbor_weight, self.neighbor_temp = c.NEIGHBOR_WEIGHT, c.NEIGHBOR_TEMP
        # "branch": one graph per branch from its own Jaccard distance, stacked (branch b's rows and
        # columns offset by b·M); "clustering": one graph from the clustering distance for all branches
        self.branch_jaccard = JaccardDistance(cfg) if c.NEIGHBOR_GRAPH == "branch" else None
        self.use_bank = c.NEIGHBOR_SCOPE == "dataset"
        # neighbour graph over the pseudo-labelled samples (CSR) and the per-branch prediction bank
        self.register_buffer("graph_indptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("graph_indices", torch.zeros(0, dtype=torch.long))
        self.register_buffer("graph_dist", torch.zeros(0))
        self.register_buffer("bank", torch.zeros(self.num_branches, 0, 0))
        self.build_losses(cfg)

    def cluster_extractor(self) -> nn.Module:
        """The module whose eval forward gives the clustering features: all branches side by side
        (the global feature alone without parts)."""
        return _BranchFeatures(self.encoder) if self.num_branches > 1 else self

    def forward(self, batch):
        images = batch["images"].to(self.device, non_blocking=True)
        if not self.training:
            return self.encoder.embed(self.encoder.pooled(images))
        targets = batch["targets"].to(self.device, non_blocking=True)
        index = batch["index"].to(self.device, non_blocking=True)
        return self.float32_batch_losses({"pooled": self.encoder.branch_pooled(images)}, targets, index=index)

    def batch_losses(self, per_sample, targets: torch.Tensor, index: torch.Tensor):
        bn = self.encoder.branch_neck(per_sample["pooled"])                      # [B, 1+P, d]
        features = F.normalize(bn, dim=2)
        logits = [self._class_logits(b, bn[:, b]) for b in range(self.num_branches)]
        outputs = {"branch_weights": self.branch_weights,
                   "branch_logits": [mem.logits(features[:, b]) for b, mem in enumerate(self.memories)],
                   "class_logits": logits,
                   "refined_targets": self.refined_labels([z.detach() for z in logits], targets, index)}
        losses = self.weighted_losses(outputs, targets)
        for b, mem in enumerate(self.memories):
            mem.update(features[:, b].detach(), targets)
        return losses

    def _class_logits(self, b: int, x: torch.Tensor) -> torch.Tensor:
        """Branch b's classifier logits over the current C clusters (its first C rows)."""
        weight = self.classifiers[b].weight
        return x.mm(weight[:self.memories[b].num_classes].t())

    @torch.no_grad()
    def refined_labels(self, logits, targets: torch.Tensor, index: torch.Tensor):
        """Per branch, the refined targets ỹ_b [B, C] of the batch."""
        graph = (self.graph_indptr, self.graph_indices, self.graph_dist)
        per_branch = self.branch_jaccard is not None
        rows = (len(self.graph_indptr) - 1) // self.num_branches
        ensembles = []
        for b, z in enumerate(logits):
            probs = z.float().softmax(1)                  # float32 targets, also under autocast
            bank = None
            if self.use_bank:  # every rank writes the whole (gathered) batch: the banks stay equal
                drawn, drawn_probs = comm.all_gather_cat(index), comm.all_gather_cat(probs)
                first = first_draws(drawn)                # a sample drawn twice: its first draw
                self.bank[b, drawn[first]] = drawn_probs[first]
                bank = self.bank.flatten(0, 1) if per_branch else self.bank[b]
            rows_b = index + b * rows if per_branch else index
            ensembles.append(neighbor_ensemble(probs, rows_b, graph, self.neighbor_weight, self.neighbor_temp, bank))
        ensembles = torch.stack(ensembles)
        if self.exchange:
            ensembles = exchange_labels(ensembles, self.kl_temp)
        return [refined_targets(e, targets, a) for e, a in zip(ensembles, self.alphas)]

    @torch.no_grad()
    def reset_pseudo_labels(self, result) -> None:
        """Per branch: memory and classifier ← L2-normalised centroids; the neighbour graph D <= eps
        over the pseudo-labelled samples (in training-list order) from the clustering distance
        ``result.distance`` (or from each branch's Jaccard distance); the prediction bank ← one-hot
        pseudo-labels."""
        features, labels, distance = result.features, result.labels, result.distance
        if distance is None and self.branch_jaccard is None:
            raise ValueError("NCPLR builds its neighbour graph from the clustering distance: use a "
                             "distance-based clusterer (CLUSTER.NAME DBSCAN or ICDBSCAN)")
        labels = np.asarray(labels)
        num_clusters = int(labels.max(initial=-1)) + 1
        if self.classifier_rows and num_clusters > self.classifier_rows:
            raise ValueError(f"{num_clusters} clusters do not fit the {self.classifier_rows}-row classifiers: "
                             f"raise MODEL.NCPLR.CLASSIFIER_ROWS")
        branches = features.float().view(len(features), self.num_branches, -1)
        for b in range(self.num_branches):
            centroids = F.normalize(cluster_centroids(branches[:, b], labels), dim=1).to(self.device)
            self.memories[b].reset(centroids)
            if self.classifier_rows:
                self.classifiers[b].weight.data[:len(centroids)] = centroids
            else:
                self.classifiers[b].weight.data = centroids.clone()
        keep = np.flatnonzero(labels >= 0)
        if self.branch_jaccard is None:
            indptr, indices, dist = neighbor_graph(distance, keep, self.neighbor_eps[0])
        else:
            graphs = []
            for b, eps in enumerate(self.neighbor_eps):
                jaccard = self.branch_jaccard(branches[:, b], max_dist=eps)
                graphs.append(neighbor_graph(jaccard, keep, eps))
            indptr, indices, dist = _stack_graphs(graphs)
        self.graph_indptr, self.graph_indices, self.graph_dist = (t.to(self.device) for t in (indptr, indices, dist))
        if self.use_bank:
            onehot = F.one_hot(torch.as_tensor(labels[keep], dtype=torch.long), self.memories[0].num_classes)
            self.bank = onehot.float().to(self.device).unsqueeze(0).repeat(self.num_branches, 1, 1)

    def relabelled_parameters(self):
        """Classifier rows replaced by ``reset_pseudo_labels``: their optimiser state is dropped when the
        pseudo-labels change (MODEL.NCPLR.RESET_CLASSIFIER_MOMENTS). With it off none are returned, so
        the Adam moments and step count carry over, as in the released code, where row k's moments of
        the previous clustering's class k drive the new class k."""
        return [clf.weight for clf in self.classifiers] if self.reset_moments else []
