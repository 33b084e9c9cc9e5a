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
