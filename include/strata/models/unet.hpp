#pragma once
/// A plain U-Net (four levels, 3×64×64 in, 2 class maps out), declared as the nn.Module of
/// tests/torchvision/unet.py is written: enc1..enc3 and bottleneck double convs with a 2×2 max
/// pool between them; up3..up1 (ConvTranspose2d 2×2, stride 2, or bilinear upsampling with
/// align_corners), each concatenated after its encoder's output (torch.cat([skip, up], 1)) and
/// followed by dec3..dec1; head, a 1×1 conv.
#include <type_traits>

#include "strata/layers/activation.hpp"
#include "strata/layers/batch_norm.hpp"
#include "strata/layers/conv.hpp"
#include "strata/layers/conv_transpose.hpp"
#include "strata/layers/pool.hpp"
#include "strata/layers/upsample.hpp"
#include "strata/pipeline/pipeline.hpp"

namespace strata::models {

/// Two 3×3 convs (padding 1, no bias), each followed by batch_norm and relu: an nn.Sequential
/// ("0.weight", "1.running_mean", ..., "4.bias").
template <int Out>
inline constexpr auto double_conv = conv<Out, 3, ConvOpts{.padding = 1, .bias = false}> |
                                    batch_norm | relu |
                                    conv<Out, 3, ConvOpts{.padding = 1, .bias = false}> |
                                    batch_norm | relu;

/// How a U-Net's decoder doubles H and W.
enum class UNetUp : unsigned char {
  transpose,  ///< ConvTranspose2d(C, C/2, 2, stride=2) ("upN.weight", "upN.bias")
  bilinear,   ///< nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), no parameters
};

namespace detail {
/// The decoder's upsampling to Out channels (transpose), or keeping the channels (bilinear).
template <FixedString Name, int Out, UNetUp Up>
constexpr auto unet_up() {
  if constexpr (Up == UNetUp::transpose) {
    return named<Name>(conv_transpose<Out, 2, ConvTransposeOpts{.stride = 2}>);
  } else {
    return named<"up">(upsample<2, UpsampleOpts{.mode = Interp::bilinear, .align_corners = true}>);
  }
}

/// torch.cat([x, path(x)], 1), written in a module's forward: a U-Net's skip connection, the
/// level's encoder output first, then the upsampled decoder map. The two named<""> keep the
/// concat and its branch from adding name parts, so every module inside `path` is named as an
/// attribute of the U-Net ("enc2.0.weight", "up3.weight").
template <class Path>
constexpr auto skip_concat(Path path) {
  return named<"">(concat(identity, named<"">(path)));
}

template <int Classes, int W, UNetUp Up>
constexpr auto unet() {
  constexpr auto pool = named<"pool">(max_pool<2>);
  constexpr auto level3 = skip_concat(pool | named<"bottleneck">(double_conv<8 * W>) |
                                      unet_up<"up3", 4 * W, Up>());
  constexpr auto level2 = skip_concat(pool | named<"enc3">(double_conv<4 * W>) | level3 |
                                      named<"dec3">(double_conv<4 * W>) |
                                      unet_up<"up2", 2 * W, Up>());
  constexpr auto level1 = skip_concat(pool | named<"enc2">(double_conv<2 * W>) | level2 |
                                      named<"dec2">(double_conv<2 * W>) | unet_up<"up1", W, Up>());
  return input<3, 64, 64> | named<"enc1">(double_conv<W>) | level1 |
         named<"dec1">(double_conv<W>) | named<"head">(conv<Classes, 1>);
}
}  // namespace detail

/// The U-Net of tests/torchvision/unet.py, UNet(classes=2, width=16, bilinear=False): 482,754
/// parameters, (3, 64, 64) → (2, 64, 64).
inline constexpr auto unet = detail::unet<2, 16, UNetUp::transpose>();
/// The same with bilinear upsampling (UNet(..., bilinear=True)): the decoder keeps the channels
/// it is given, so dec3 reads 4·16 + 8·16 channels.
inline constexpr auto unet_bilinear = detail::unet<2, 16, UNetUp::bilinear>();

using UNet = std::remove_cv_t<decltype(unet)>;
using UNetBilinear = std::remove_cv_t<decltype(unet_bilinear)>;

}  // namespace strata::models
