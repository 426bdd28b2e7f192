"""Writes, for torchvision's MobileNetV2, EfficientNet-B0, DenseNet-121 and the U-Net of unet.py
(transpose and bilinear), the state_dict (random init, non-trivial BatchNorm statistics, eval
mode, fixed seed) and one batch of 2 inputs with the model's outputs, as safetensors, to DIR, with
no safetensors package needed. With --manifests FIXTURES_DIR it also writes each model's
state_dict names, shapes and dtypes to FIXTURES_DIR/torchvision_<model>.state_dict.json
(unet_<...>.state_dict.json for the U-Nets), what tests/unit/test_torchvision_model_names.cpp
compares with the Strata declarations.
Usage: python3 make_models_io.py DIR [--manifests FIXTURES_DIR]"""
import argparse
import json
import os

import torch
import torchvision

from conformance_io import randomize_batch_norm, save
from unet import UNet

MODELS = {
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), (3, 224, 224)),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), (3, 224, 224)),
    "densenet121": (lambda: torchvision.models.densenet121(), (3, 224, 224)),
    "unet": (lambda: UNet(bilinear=False), (3, 64, 64)),
    "unet_bilinear": (lambda: UNet(bilinear=True), (3, 64, 64)),
}


def write_manifest(path, name, model):
    entries = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
               for k, v in model.state_dict().items()]
    params = sum(p.numel() for p in model.parameters())
    with open(path, "w") as f:
        json.dump({"model": name, "parameters": params, "tensors": entries}, f, indent=0)
    print(path, len(entries), "tensors,", params, "parameters")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--manifests", metavar="FIXTURES_DIR")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    torch.set_num_threads(1)
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    for i, (name, (make, chw)) in enumerate(MODELS.items()):
        torch.manual_seed(1000 + i)  # per model, so adding one leaves the others unchanged
        model = make().eval()
        randomize_batch_norm(model)
        x = torch.rand(2, *chw)
        with torch.no_grad():
            y = model(x)
        save(f"{args.dir}/{name}.weights.safetensors", model.state_dict(), {**meta, "model": name})
        save(f"{args.dir}/{name}.io.safetensors", {"input": x, "output": y}, {**meta, "model": name})
        print(name, "written: output", tuple(y.shape))
        if args.manifests:
            prefix = "" if name.startswith("unet") else "torchvision_"
            write_manifest(os.path.join(args.manifests, f"{prefix}{name}.state_dict.json"),
                           name, model)


if __name__ == "__main__":
    main()
