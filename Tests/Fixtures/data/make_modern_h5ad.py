"""Writes pbmc_modern.h5ad: the first 120 cells of the legacy-layout 10x_pbmc68k_reduced.h5ad,
re-written by anndata in the current on-disk layout (run: python3 make_modern_h5ad.py)."""
import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

with h5py.File("10x_pbmc68k_reduced.h5ad", "r") as f:
    cells = 120
    obs = f["obs"][:cells]
    genes = [g.decode() for g in f["var"]["index"]]
    categories = [c.decode() for c in f["uns/bulk_labels_categories"][:]]
    raw = f["raw.X"]
    matrix = sp.csr_matrix((raw["data"][:], raw["indices"][:], raw["indptr"][:]), shape=tuple(raw.attrs["h5sparse_shape"]))[:cells]
    dense = f["X"][:cells]
frame = pd.DataFrame(index=[i.decode() for i in obs["index"]])
frame["bulk_labels"] = pd.Categorical.from_codes(obs["bulk_labels"].astype(int), categories)
frame["n_counts"] = obs["n_counts"]
adata = anndata.AnnData(X=dense.astype(np.float32), obs=frame, var=pd.DataFrame(index=genes))
adata.raw = anndata.AnnData(X=matrix.astype(np.float32), obs=frame, var=pd.DataFrame(index=genes))
adata.write_h5ad("pbmc_modern.h5ad")
