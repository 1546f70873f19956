"""Licence plates from real footage: a synthetic plate renderer, real plate loaders, character
preparation (polarity, contrast), cell search, whole-plate evaluation and batch reading. No Qt."""
