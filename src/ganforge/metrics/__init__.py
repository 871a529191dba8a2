"""Evaluation metrics: feature extractors, FID, KID, IS, precision/recall, density/coverage, PSNR/SSIM.

Metric functions take feature arrays (numpy or torch, rows are samples), so they do not depend on the
extractor; `compute_features` streams image batches through an extractor into `FeatureStats`, and
`build_record` writes down the protocol with the numbers. Nothing here downloads anything unless
`fetch_inception_weights` is called; `ganforge-photo-v1` is a small shipped extractor for colour images
when Inception weights cannot be had (its own scale: never comparable with Inception FID).
"""
from .cache import cache_key, cached_reference_stats, canonical_json, reference_key_parts
from .compute import METRIC_NAMES, compute_metrics
from .extractor import FeatureExtractor, extractor_names, get_extractor, register_extractor
from .fid import fid_from_features, fid_from_stats, frechet_distance, mean_cov, trace_sqrt_product
from .image_quality import l1, psnr, rgb_to_y, ssim
from .inception import InceptionExtractor
from .inception_score import inception_score
from .inception_weights import (
    INCEPTION_FILENAME,
    INCEPTION_SHA256,
    INCEPTION_URL,
    fetch_inception_weights,
    sha256_file,
)
from .kid import kid, mmd2_unbiased
from .prdc import density_coverage, prdc, precision_recall
from .record import build_record, format_table
from .stats import FeatureStats, compute_features

__all__ = [
    "FeatureExtractor", "register_extractor", "get_extractor", "extractor_names", "InceptionExtractor",
    "INCEPTION_FILENAME", "INCEPTION_SHA256", "INCEPTION_URL", "fetch_inception_weights", "sha256_file",
    "frechet_distance", "trace_sqrt_product", "mean_cov", "fid_from_features", "fid_from_stats",
    "kid", "mmd2_unbiased", "inception_score", "prdc", "precision_recall", "density_coverage",
    "psnr", "ssim", "l1", "rgb_to_y",
    "FeatureStats", "compute_features", "cached_reference_stats", "cache_key", "canonical_json",
    "reference_key_parts", "compute_metrics", "METRIC_NAMES", "build_record", "format_table",
]
