from .pooling import GeneralizedMeanPooling, build_pooling

__all__ = ["GeneralizedMeanPooling", "build_pooling"]
