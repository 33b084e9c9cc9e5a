//! Architecture parameter counts and names equal the PyTorch originals (no GPU needed).

use advseg::nn::resnet::{ResNet, ResNetCfg};
use advseg::nn::ParamStore;

fn resnet(depth: usize, fc: Option<usize>) -> ParamStore {
    let mut s = ParamStore::new();
    ResNet::new(
        &mut s,
        "",
        ResNetCfg {
            depth,
            output_stride: None,
            stride_on_1x1: false,
            fc_classes: fc,
        },
    )
    .unwrap();
    s
}

#[test]
fn torchvision_resnet_parameter_counts() {
    // torchvision.models.resnetXX(): sum(p.numel() for p in m.parameters())
    assert_eq!(resnet(18, Some(1000)).num_params(), 11_689_512);
    assert_eq!(resnet(50, Some(1000)).num_params(), 25_557_032);
    assert_eq!(resnet(101, Some(1000)).num_params(), 44_549_160);
}

#[test]
fn torchvision_resnet50_names() {
    let s = resnet(50, Some(1000));
    let names: Vec<&str> = s.slots().iter().map(|p| p.name.as_str()).collect();
    for n in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.bias",
        "layer4.2.bn3.running_mean",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(names.contains(&n), "missing {n}");
    }
    // torchvision state_dict: 320 entries, 53 of them num_batches_tracked (optional here).
    assert_eq!(names.len(), 320 - 53);
}

#[test]
fn torchvision_vgg16_parameter_count() {
    let mut s = ParamStore::new();
    advseg::nn::vgg::Vgg16::new(&mut s, "", Some(1000));
    assert_eq!(s.num_params(), 138_357_544);
    assert!(s.find("features.28.weight").is_some() && s.find("classifier.6.bias").is_some());
}

#[test]
fn advsemiseg_deeplabv2_and_discriminator_keys() {
    let mut s = ParamStore::new();
    advseg::nn::deeplab::DeepLabV2::new(&mut s, 101, 21).unwrap();
    // torchvision ResNet-101 without fc + four 3x3 2048->21 convs with bias.
    assert_eq!(
        s.num_params(),
        44_549_160 - (2048 * 1000 + 1000) + 4 * (2048 * 21 * 9 + 21)
    );
    assert!(s.find("layer5.conv2d_list.3.bias").is_some());
    assert!(s.find("fc.weight").is_none());
    // Caffe style: layer2.0's stride sits on the 1x1 conv.
    let mut d = ParamStore::new();
    let disc = advseg::nn::disc::FcDiscriminator::new(&mut d, "", 21, 64);
    let names: Vec<&str> = d.slots().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "conv3.weight",
            "conv3.bias",
            "conv4.weight",
            "conv4.bias",
            "classifier.weight",
            "classifier.bias"
        ]
    );
    assert_eq!(disc.convs[0].weight.shape, vec![64, 21, 4, 4]);
    assert_eq!(
        d.num_params(),
        (21 * 64 * 16 + 64)
            + (64 * 128 * 16 + 128)
            + (128 * 256 * 16 + 256)
            + (256 * 512 * 16 + 512)
            + (512 * 16 + 1)
    );
}
