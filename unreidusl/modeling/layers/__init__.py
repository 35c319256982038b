from .pooling import GeneralizedMeanPooling, build_pooling
from .resizable import resize_like_checkpoint

__all__ = ["GeneralizedMeanPooling", "build_pooling", "resize_like_checkpoint"]
