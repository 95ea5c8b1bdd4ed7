"""A model whose initialisation always fails, to see the server's reason surface in the client."""


class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("broken on purpose: weights file missing")

    def execute(self, requests):
        return []
