"""Rate-limit storages: ``memory://`` (:mod:`.memory`) and ``redis://`` (:mod:`.redis`)."""
