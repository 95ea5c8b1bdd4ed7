"""Source of the image preprocessor model: ``model.py`` plus the pure ``imaging`` module.

The repository builder copies these files (see ``tritonkit.custom_backends.backend_files``) into
a version folder, where the Python backend stub imports ``model`` and ``model`` imports
``imaging`` as top-level modules. Nothing here imports ``model``: it needs the stub's
``triton_python_backend_utils``.
"""
