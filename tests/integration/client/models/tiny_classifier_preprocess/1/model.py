"""Decodes each encoded image and returns its mean colour, scaled to [0, 1]."""

import io

import numpy as np
import triton_python_backend_utils as pb_utils
from PIL import Image


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            means = [
                np.asarray(Image.open(io.BytesIO(row[0])).convert("RGB"), dtype=np.float32).mean(axis=(0, 1))
                / 255
                for row in images
            ]
            output = pb_utils.Tensor("MEAN_RGB", np.stack(means).astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
