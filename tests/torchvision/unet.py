"""A plain U-Net, written the usual way (attributes and a forward with torch.cat), as declared in
include/strata/models/unet.hpp: four levels, double 3x3 conv + BatchNorm + ReLU blocks, 2x2 max
pooling down, ConvTranspose2d(2, stride 2) or bilinear (align_corners=True) upsampling, the
encoder's map concatenated before the upsampled one, a 1x1 conv head."""
import torch
from torch import nn


def double_conv(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, in_channels=3, classes=2, width=16, bilinear=False):
        super().__init__()
        w = width
        self.bilinear = bilinear
        self.enc1 = double_conv(in_channels, w)
        self.enc2 = double_conv(w, 2 * w)
        self.enc3 = double_conv(2 * w, 4 * w)
        self.bottleneck = double_conv(4 * w, 8 * w)
        self.pool = nn.MaxPool2d(2)
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.dec3 = double_conv(4 * w + 8 * w, 4 * w)
            self.dec2 = double_conv(2 * w + 4 * w, 2 * w)
            self.dec1 = double_conv(w + 2 * w, w)
        else:
            self.up3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2)
            self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
            self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
            self.dec3 = double_conv(8 * w, 4 * w)
            self.dec2 = double_conv(4 * w, 2 * w)
            self.dec1 = double_conv(2 * w, w)
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        up3, up2, up1 = ((self.up,) * 3 if self.bilinear else (self.up3, self.up2, self.up1))
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        b = self.bottleneck(self.pool(e3))
        d3 = self.dec3(torch.cat([e3, up3(b)], 1))
        d2 = self.dec2(torch.cat([e2, up2(d3)], 1))
        d1 = self.dec1(torch.cat([e1, up1(d2)], 1))
        return self.head(d1)
