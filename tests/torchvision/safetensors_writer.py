"""save(path, tensors, metadata=None): torch tensors (f32, i64) to a safetensors file, with no
safetensors package needed — shared by the torchvision conformance scripts of this folder."""
import json
import struct

import torch


def save(path, tensors, metadata=None):
    header, data = ({"__metadata__": metadata} if metadata else {}), b""
    for k, v in tensors.items():
        v = v.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[v.dtype]
        payload = v.numpy().tobytes()
        header[k] = {"dtype": dtype, "shape": list(v.shape),
                     "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
