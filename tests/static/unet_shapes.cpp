// The U-Net of tests/torchvision/unet.py declared in the DSL: parameter count, names as the
// module's attributes (skip connections add no name part), the shapes through the skip concats,
// and a plan that keeps each skip tensor alive until its concat copies it.
#include <strata/models/unet.hpp>

#include "label_checks.hpp"

using namespace strata;
using models::UNet;
using models::UNetBilinear;

// Parameters of double_conv(cin, cout) (two bias-free 3×3 convs, two batch norms) and of
// ConvTranspose2d(cin, cout, 2, stride=2).
constexpr std::int64_t dc(std::int64_t cin, std::int64_t cout) {
  return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout;
}
constexpr std::int64_t up(std::int64_t cin, std::int64_t cout) { return cin * cout * 4 + cout; }
static_assert(UNet::param_count == dc(3, 16) + dc(16, 32) + dc(32, 64) + dc(64, 128) +
                                       up(128, 64) + dc(128, 64) + up(64, 32) + dc(64, 32) +
                                       up(32, 16) + dc(32, 16) + (16 * 2 + 2));
static_assert(UNet::param_count == 482754);
// Bilinear upsampling keeps the channels: the decoders read skip + all of the deeper map.
static_assert(UNetBilinear::param_count == dc(3, 16) + dc(16, 32) + dc(32, 64) + dc(64, 128) +
                                               dc(64 + 128, 64) + dc(32 + 64, 32) +
                                               dc(16 + 32, 16) + (16 * 2 + 2));

static_assert(UNet::output_spec.shape == chw(2, 64, 64));
static_assert(UNetBilinear::output_spec.shape == chw(2, 64, 64));
// Stages: enc1, the outer skip concat, dec1, head.
static_assert(UNet::num_stages == 4);
static_assert(UNet::stage_output(0).shape == chw(16, 64, 64));
static_assert(UNet::stage_output(1).shape == chw(32, 64, 64));
static_assert(UNetBilinear::stage_output(1).shape == chw(48, 64, 64));

// Names: each module an attribute of the U-Net.
static_assert(UNet::graph.find_param("enc1.0.weight") == 0);
static_assert(UNet::graph.find_param("enc2.4.running_var") >= 0);
static_assert(UNet::graph.find_param("bottleneck.3.weight") >= 0);
static_assert(UNet::graph.find_param("up3.weight") >= 0 && UNet::graph.find_param("up3.bias") >= 0);
static_assert(UNet::graph.find_param("dec3.0.weight") >= 0);
static_assert(UNet::graph.find_param("up1.bias") >= 0);
static_assert(UNet::graph.find_param("head.weight") >= 0 && UNet::graph.find_param("head.bias") >= 0);
static_assert(UNet::graph.num_params == 7 * (2 + 2 * 5) + 3 * 2 + 2);
static_assert(UNetBilinear::graph.find_param("up3.weight") == -1);
static_assert(UNetBilinear::graph.num_params == 7 * (2 + 2 * 5) + 2);
// ConvTranspose2d's weight is (in, out, kh, kw).
constexpr const ParamSpec& up3 = UNet::graph.params[UNet::graph.find_param("up3.weight")].spec;
static_assert(up3.dims[0] == 128 && up3.dims[1] == 64 && up3.dims[2] == 2 && up3.dims[3] == 2);
constexpr const ParamSpec& dec3 = UNet::graph.params[UNet::graph.find_param("dec3.0.weight")].spec;
static_assert(dec3.dims[0] == 64 && dec3.dims[1] == 128);

// Ops: 14 conv+bn+relu (7 double convs), 3 pools, 3 ups, 3 copies of a skip tensor into its concat, the head.
static_assert(UNet::graph.num_ops == 14 + 3 + 3 + 3 + 1);
static_assert(UNet::graph.ops[11].label.view() == "up3");
static_assert(UNet::graph.ops[11].kind == OpKind::conv_transpose);
static_assert(UNet::graph.ops[12].kind == OpKind::copy);
static_assert(UNet::graph.ops[12].in == UNet::graph.ops[7].out);  // enc3's output, the skip
static_assert(UNetBilinear::graph.ops[11].kind == OpKind::upsample);
static_assert(labels_unique<UNet>() && labels_unique<UNetBilinear>());

// The skip tensor (enc1's output) is live from enc1 until the outermost copy, late in the net.
constexpr int enc1_out = UNet::graph.ops[1].out;
static_assert(UNet::plan.tensors[enc1_out].last == UNet::graph.num_ops - 4);

int main() {}
