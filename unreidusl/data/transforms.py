"""torchvision transforms driven by ``INPUT.*``."""
import torchvision.transforms as T


def build_transforms(cfg, is_train: bool) -> T.Compose:
    i = cfg.INPUT
    size = tuple(i.SIZE_TRAIN if is_train else i.SIZE_TEST)
    ops = [T.Resize(size, interpolation=T.InterpolationMode.BICUBIC)]
    if is_train:
        if i.FLIP.ENABLED:
            ops.append(T.RandomHorizontalFlip(p=i.FLIP.PROB))
        if i.PADDING.ENABLED:
            ops += [T.Pad(i.PADDING.SIZE), T.RandomCrop(size)]
        if i.CJ.ENABLED:
            jitter = T.ColorJitter(i.CJ.BRIGHTNESS, i.CJ.CONTRAST, i.CJ.SATURATION, i.CJ.HUE)
            ops.append(T.RandomApply([jitter], p=i.CJ.PROB))
    ops += [T.ToTensor(), T.Normalize(mean=i.PIXEL_MEAN, std=i.PIXEL_STD)]
    if is_train and i.REA.ENABLED:
        ops.append(T.RandomErasing(p=i.REA.PROB, scale=(0.02, 0.4), ratio=(0.3, 3.3),
                                   value=tuple(i.REA.VALUE)))
    return T.Compose(ops)
