"""What the torchvision conformance scripts of this folder share: save(path, tensors,
metadata=None) writes torch tensors (f32, i64) as a safetensors file with no safetensors package
needed; randomize_batch_norm(model) gives every BatchNorm2d non-trivial statistics and affine
parameters, so that folding them is really exercised."""
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


def randomize_batch_norm(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
