"""Auxiliary information (AuxUSLReID): what the camera network itself says about which samples can
or cannot be the same identity, used at training time (clustering) and at test time (ranking).

* **TOC** (time-overlap constraint): tracklets of one camera that overlap in time are different
  people: cannot-links for ICDBSCAN (``CLUSTER.TOC``), +inf / a penalty at test time (``TEST.TOC``);
* **SCP** (same-camera penalty): ``D + λ·[same camera]`` (``CLUSTER.SCP``, ``TEST.SCP``);
* **STS** (spatio-temporal score): ``D · (1 + λ·exp(−γ·P))`` with P the plausibility of the time gap
  between the two cameras, from a transit model estimated from the pseudo-labels (``CLUSTER.STS``,
  ``TEST.STS``).

Modules: ``meta`` (tracklet metadata, TOC mining), ``transit`` (the STS model), ``terms`` (the
formulas, and their training-side application to a sparse distance), ``mining`` (everything mined
from a dataset's metadata), ``files`` (the ``.npz`` format and the original pickles, ``AUX.PATH``),
``test_time`` (the evaluator's terms).  docs/clustering.md gives the details.
"""
from .files import AuxMismatchError, load_aux, load_test_aux, load_train_aux, save_aux
from .meta import TrackletMeta, overlap_matrix
from .mining import TrainAux, mine_test_aux, mine_train_aux
from .terms import apply_aux_terms, apply_scp, apply_sts, apply_toc
from .test_time import AuxTerms, CameraMatch, build_test_aux, test_transit_available, transit_file
from .transit import TransitModel, TransitPlausibility

__all__ = ["AuxMismatchError", "load_aux", "load_test_aux", "load_train_aux", "save_aux", "TrackletMeta",
           "overlap_matrix", "TrainAux", "mine_test_aux", "mine_train_aux", "apply_aux_terms", "apply_scp",
           "apply_sts", "apply_toc", "AuxTerms", "CameraMatch", "build_test_aux", "test_transit_available",
           "transit_file", "TransitModel", "TransitPlausibility"]
