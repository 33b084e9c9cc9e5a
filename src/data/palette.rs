//! Class names and colours of the built-in datasets.

/// The PASCAL VOC colour map: bit-interleaved index → RGB (also used for folder datasets without
/// colours).
pub fn voc_colour(i: usize) -> [u8; 3] {
    let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
    let mut c = i;
    for j in 0..8 {
        r |= ((c & 1) as u8) << (7 - j);
        g |= (((c >> 1) & 1) as u8) << (7 - j);
        b |= (((c >> 2) & 1) as u8) << (7 - j);
        c >>= 3;
    }
    [r, g, b]
}

pub const VOC_NAMES: [&str; 21] = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

pub const CAMVID_NAMES: [&str; 11] = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
];

pub const CAMVID_COLOURS: [[u8; 3]; 11] = [
    [128, 128, 128],
    [128, 0, 0],
    [192, 192, 128],
    [128, 64, 128],
    [60, 40, 222],
    [128, 128, 0],
    [192, 128, 128],
    [64, 64, 128],
    [64, 0, 128],
    [64, 64, 0],
    [0, 128, 192],
];

/// CamVid's raw void index, mapped to the ignore index on read.
pub const CAMVID_VOID: u8 = 11;

/// `camvid-things`: CamVid's object ("thing") classes with every "stuff" class merged into a
/// background class 0, the VOC-style layout weakly-supervised methods need (CAMs localise
/// objects; pixels no object covers are background).
pub const CAMVID_THINGS_NAMES: [&str; 6] = [
    "background",
    "Pole",
    "SignSymbol",
    "Car",
    "Pedestrian",
    "Bicyclist",
];

pub const CAMVID_THINGS_COLOURS: [[u8; 3]; 6] = [
    [0, 0, 0],
    [192, 192, 128],
    [192, 128, 128],
    [64, 0, 128],
    [64, 64, 0],
    [0, 128, 192],
];

/// Raw CamVid index 0..=10 → `camvid-things` class: Sky, Building, Road, Pavement, Tree and
/// Fence (stuff) → background; Pole, SignSymbol, Car, Pedestrian, Bicyclist → 1..=5.
pub const CAMVID_THINGS_OF_RAW: [u8; 11] = [0, 0, 1, 0, 0, 0, 2, 0, 3, 4, 5];

pub const CITYSCAPES_NAMES: [&str; 19] = [
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
];

pub const CITYSCAPES_COLOURS: [[u8; 3]; 19] = [
    [128, 64, 128],
    [244, 35, 232],
    [70, 70, 70],
    [102, 102, 156],
    [190, 153, 153],
    [153, 153, 153],
    [250, 170, 30],
    [220, 220, 0],
    [107, 142, 35],
    [152, 251, 152],
    [70, 130, 180],
    [220, 20, 60],
    [255, 0, 0],
    [0, 0, 142],
    [0, 0, 70],
    [0, 60, 100],
    [0, 80, 100],
    [0, 0, 230],
    [119, 11, 32],
];

/// Cityscapes label id (0..=33) of each of the 19 train ids, in train-id order.
pub const CITYSCAPES_TRAIN_IDS: [u8; 19] = [
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
];

/// Largest valid Cityscapes label id; ids without a train id map to ignore.
pub const CITYSCAPES_MAX_ID: u8 = 33;
