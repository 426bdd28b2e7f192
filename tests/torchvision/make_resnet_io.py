"""Writes torchvision ResNet-18/50 (random init, non-trivial BN statistics, eval mode) state_dicts
and one batch of input/output to DIR as safetensors, with no safetensors package needed.
Usage: python3 make_resnet_io.py DIR"""
import sys

import torch
import torchvision

from conformance_io import randomize_batch_norm, save

out_dir = sys.argv[1]
torch.manual_seed(0)

for name in ["resnet18", "resnet50"]:
    model = getattr(torchvision.models, name)().eval()
    randomize_batch_norm(model)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    save(f"{out_dir}/{name}.weights.safetensors", model.state_dict())
    save(f"{out_dir}/{name}.io.safetensors", {"input": x, "output": y})
    print(name, "written")
