"""Source of the ONNX classifier model: a Python-backend ``model.py`` that hosts onnxruntime.

The pip-installed Triton has no onnxruntime backend, so the repository builder copies
``model.py`` (see ``tritonkit.custom_backends.backend_files``) into a version folder next to
``model.onnx``. Nothing here imports ``model``: it needs the stub's
``triton_python_backend_utils``.
"""
