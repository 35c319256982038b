"""Applications of a trained model, each a library function and a console command (``setup.py``
entry points; ``tools/*.py`` are thin wrappers):

* ``train`` (``unreidusl-train``, ``tools/main.py``): training and evaluation;
* ``search`` (``unreidusl-search``, ``tools/search.py``): index a collection, answer queries;
* ``discover`` (``unreidusl-discover``, ``tools/discover.py``): identity discovery with the
  toolkit's pseudo-labelling, ``clusters.csv`` and an HTML report (``report``);
* ``export`` (``unreidusl-export``, ``tools/export.py``): TorchScript and ONNX;
* ``make_synthetic`` (``unreidusl-make-synthetic``, ``tools/make_synthetic.py``).

docs/use_a_model.md describes them.
"""
