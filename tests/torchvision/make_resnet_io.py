"""Writes torchvision ResNet-18/50 (random init, non-trivial BN statistics, eval mode) state_dicts
and one batch of input/output to DIR as safetensors, with no safetensors package needed.
Usage: python3 make_resnet_io.py DIR"""
import sys

import torch
import torchvision

from safetensors_writer import save

out_dir = sys.argv[1]
torch.manual_seed(0)

for name in ["resnet18", "resnet50"]:
    model = getattr(torchvision.models, name)().eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    save(f"{out_dir}/{name}.weights.safetensors", model.state_dict())
    save(f"{out_dir}/{name}.io.safetensors", {"input": x, "output": y})
    print(name, "written")
