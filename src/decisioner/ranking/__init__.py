"""Learned ranking: features (:mod:`.features`) and training (:mod:`.train`, needs LightGBM)."""
