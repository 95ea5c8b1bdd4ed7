"""Bytes in, four floats out: the first four byte values of each "image", scaled to [0, 1].

An "image" that starts with ``bad`` fails its request, so failure metrics have something to count.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            data = [bytes(item[0]) for item in images]
            if any(item.startswith(b"bad") for item in data):
                error = pb_utils.TritonError("undecodable image")
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
                continue
            pixels = np.zeros((len(data), 4), dtype=np.float32)
            for row, item in enumerate(data):
                head = np.frombuffer(item[:4].ljust(4, b"\0"), dtype=np.uint8)
                pixels[row] = head.astype(np.float32) / 255.0
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("PIXELS", pixels)]))
        return responses
