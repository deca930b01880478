# Concatenates two .h5ad files with Python anndata (argv: a, b, join) as tests/anndata_concat_spec.lua
# asks velua to, and prints the result as a Lua table (MISSING for NaN/None).
import sys, math, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, scipy.sparse as sp, anndata
a = anndata.read_h5ad(sys.argv[1]); b = anndata.read_h5ad(sys.argv[2])
c = anndata.concat([a, b], join=sys.argv[3], label="condition", keys=["WT", "KO"],
                   index_unique="-", fill_value=0, merge="first")
def lua(v):
    if isinstance(v, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return "{" + ", ".join(lua(x) for x in list(v)) + "}"
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "MISSING"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return '"' + str(v) + '"'
def dense(m):
    return np.asarray(m.todense()) if sp.issparse(m) else np.asarray(m)
out = ["{", "var_names = " + lua(c.var_names) + ",", "obs_names = " + lua(c.obs_names) + ","]
out.append("X = " + lua([lua(r) for r in dense(c.X)]).replace('"', '') + ",")
out.append("X_sparse = " + lua(sp.issparse(c.X)) + ",")
out.append("layers = {")
for k in c.layers.keys():
    out.append('["%s"] = %s,' % (k, lua([lua(r) for r in dense(c.layers[k])]).replace('"', '')))
out.append("},")
out.append("obs = {")
for k in c.obs.columns:
    out.append('["%s"] = %s,' % (k, lua(list(c.obs[k].astype(object)))))
out.append("},")
out.append("var = {")
for k in c.var.columns:
    out.append('["%s"] = %s,' % (k, lua(list(c.var[k].astype(object)))))
out.append("},")
out.append("obsm = " + lua(list(c.obsm.keys())) + ",")
out.append("}")
print("\n".join(out))
