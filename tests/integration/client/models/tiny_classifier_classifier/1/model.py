"""Scores the three colour classes by their share of the mean colour."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            mean = pb_utils.get_input_tensor_by_name(request, "MEAN_RGB").as_numpy()
            scores = mean / np.maximum(mean.sum(axis=1, keepdims=True), 1e-6)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("SCORES", scores.astype(np.float32))]
                )
            )
        return responses
