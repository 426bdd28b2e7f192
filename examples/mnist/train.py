#!/usr/bin/env python3
"""Trains the canonical MNIST CNN (docs: BENCHMARKS.md) on the 8,000 committed training digits.

Writes
  examples/mnist/mnist_cnn.safetensors        the flat nn.Sequential's state_dict (eval mode;
                                              f32 tensors, plus PyTorch's int64
                                              `*.num_batches_tracked`), names "0.weight",
                                              "1.running_mean", "9.weight", ...
  examples/mnist/data/pytorch_reference.txt   "accuracy <float>" then, for each of the 2,000 test
                                              digits in file order, PyTorch's predicted class
                                              (eval mode, f32 on the CPU)

Input convention, the same on the C++ side: x = pixel / 255 as f32, shape (N, 1, 28, 28), no
mean/std normalisation. The saved network ends in Softmax(dim=1); training uses the logits
(the Sequential without its last module) and a log-softmax loss.

Deterministic: fixed seed, deterministic algorithms, TF32 off. Needs PyTorch and safetensors;
no network. Usage: python3 examples/mnist/train.py [--epochs N] [--device cuda|cpu]
"""

import argparse
import math
import os
import struct
import sys
import time
from pathlib import Path

# cuBLAS needs this set before CUDA starts for deterministic matrix products.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 20261121


def make_model() -> nn.Sequential:
    """The canonical network as one flat Sequential; indices give the state_dict names."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),   # 0   (N,32,28,28)
        nn.BatchNorm2d(32),               # 1
        nn.ReLU(),                        # 2
        nn.MaxPool2d(2),                  # 3   (N,32,14,14)
        nn.Conv2d(32, 64, 3, padding=1),  # 4   (N,64,14,14)
        nn.BatchNorm2d(64),               # 5
        nn.ReLU(),                        # 6
        nn.MaxPool2d(2),                  # 7   (N,64,7,7)
        nn.Flatten(),                     # 8   (N,3136)
        nn.Linear(3136, 128),             # 9
        nn.ReLU(),                        # 10
        nn.Linear(128, 10),               # 11
        nn.Softmax(dim=1),                # 12  (N,10) probabilities
    )


def read_idx(path: Path, magic: int, dims: int) -> torch.Tensor:
    """An IDX ubyte file as a uint8 tensor of its header's shape."""
    data = path.read_bytes()
    header = 4 * (1 + dims)
    found, *shape = struct.unpack(">" + "I" * (1 + dims), data[:header])
    if found != magic:
        sys.exit(f"{path}: magic 0x{found:08x}, expected 0x{magic:08x}")
    if len(data) != header + math.prod(shape):
        sys.exit(f"{path}: {len(data)} bytes do not match the header {shape}")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


def load_set(data_dir: Path, stem: str, device: torch.device):
    images = read_idx(data_dir / f"{stem}-images-idx3-ubyte", 0x803, 3)
    labels = read_idx(data_dir / f"{stem}-labels-idx1-ubyte", 0x801, 1)
    x = (images.to(torch.float32) / 255.0).unsqueeze(1)  # (N,1,28,28), x = pixel / 255
    return x.to(device), labels.to(torch.int64).to(device)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light random affine: rotation within ±10°, scale 0.9..1.1, shift within ±2 px."""
    n = x.shape[0]
    r = torch.rand(n, 4, generator=gen, device=gen.device).to(x.device)
    angle = (r[:, 0] * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * r[:, 1]
    shift = (r[:, 2:] * 2 - 1) * (2 * 2 / 28)  # 2 px in normalised [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def disable_tf32() -> None:
    """True f32 for matrix products and convolutions, in training and for the reference."""
    try:  # the PyTorch >= 2.9 settings; older versions raise on the unknown names
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    except (AttributeError, AssertionError):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the canonical MNIST CNN.")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-dir", type=Path, default=HERE / "data")
    ap.add_argument("--out", type=Path, default=HERE / "mnist_cnn.safetensors")
    ap.add_argument("--reference", type=Path, default=HERE / "data" / "pytorch_reference.txt")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    disable_tf32()

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {name}, seed {SEED}", flush=True)

    train_x, train_y = load_set(args.data_dir, "train", device)
    test_x, test_y = load_set(args.data_dir, "test", device)
    print(f"train {tuple(train_x.shape)}, test {tuple(test_x.shape)}", flush=True)

    model = make_model().to(device)
    logits = model[:-1]  # shares the modules; the loss works on logits, not probabilities
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(train_x) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    order_gen = torch.Generator().manual_seed(SEED)         # shuffling, on the CPU
    aug_gen = torch.Generator(device=device).manual_seed(SEED + 1)

    start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_x), generator=order_gen).to(device)
        total_loss, correct = 0.0, 0
        for i in range(0, len(train_x), args.batch):
            idx = order[i:i + args.batch]
            x, y = augment(train_x[idx], aug_gen), train_y[idx]
            out = logits(x)
            # -log softmax at the label, written out: avoids nll_loss, which deterministic mode flags
            # on CUDA.
            loss = -F.log_softmax(out, dim=1).gather(1, y[:, None]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            correct += (out.argmax(1) == y).sum().item()
        test_acc = (predict(model, test_x) == test_y).float().mean().item()
        print(f"epoch {epoch:3d}  loss {total_loss / len(train_x):.4f}  "
              f"train acc (augmented) {correct / len(train_x):.4f}  test acc {test_acc:.4f}  "
              f"{time.time() - start:6.1f} s", flush=True)

    # The reference: eval mode, f32 on the CPU (what Strata's CPU backend is compared with).
    model = model.cpu().eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    for k, v in state.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    cpu_pred = predict(model, test_x.cpu())
    accuracy = (cpu_pred == test_y.cpu()).float().mean().item()
    if device.type == "cuda":
        gpu_model = make_model().to(device)
        gpu_model.load_state_dict(state)
        gpu_pred = predict(gpu_model, test_x).cpu()
        print(f"GPU and CPU predictions differ on {(gpu_pred != cpu_pred).sum().item()} "
              f"of {len(cpu_pred)} test digits", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out))
    with open(args.reference, "w") as f:
        f.write(f"accuracy {accuracy:.4f}\n")
        f.writelines(f"{int(p)}\n" for p in cpu_pred)

    # Round trip: the saved file alone reproduces the predictions.
    reloaded = make_model()
    reloaded.load_state_dict(load_file(str(args.out)))
    assert torch.equal(predict(reloaded, test_x.cpu()), cpu_pred), "reloaded model disagrees"

    per_class = [(cpu_pred[test_y.cpu() == c] == c).float().mean().item() for c in range(10)]
    print("per-class test accuracy: " + " ".join(f"{c}:{a:.3f}" for c, a in enumerate(per_class)))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {args.reference}")
    print(f"final test accuracy (eval, f32, CPU): {accuracy:.4f} "
          f"({int(round(accuracy * len(cpu_pred)))}/{len(cpu_pred)})", flush=True)
    if accuracy < 0.98:
        print("WARNING: below the 98% target", flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
