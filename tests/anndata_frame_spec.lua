-- Data frames in obsm/varm (anndata keeps a pandas DataFrame there, stored as an
-- encoding-type "dataframe" group): a checked table of columns like ad.obs, read and written
-- by the h5ad code, cut by subset/_inplace_subset_*/copy, stacked by concat; and a file
-- written by Python anndata 0.8 read and written back (when /usr/bin/python3 has it).
local velua = require "velua"
local T = velua.tensor
local compare = require "support.anndata_compare"
local AD = require "velua.anndata"

local same, same_anndata = compare.same, compare.same_anndata

local function tmpname(ext)
  local p = os.tmpname()
  os.remove(p)
  return p .. (ext or ".h5ad")
end

local function with_frame()
  local ad = velua.AnnData {
    X = T.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }), obs_names = { "c1", "c2", "c3" }, var_names = { "g1", "g2" },
  }
  local meta = AD.new_slot("meta", function() return true end) -- an ordered table of columns
  meta.score = T.tensor({ 0.5, 1.5, 2.5 }, { dtype = "f64" })
  meta.batch = { codes = T.tensor({ 2, 1, 2 }, { dtype = "i64" }), categories = { "p", "q", "unused" } }
  meta.barcode = { "AAA", "CCC", "GGG" }
  meta.count = T.tensor({ 4, 5, 6 }, { dtype = "i64" })
  meta.flag = { values = T.tensor({ true, false, true }), mask = T.tensor({ false, false, true }) }
  ad.obsm.X_pca = T.tensor({ { 1, 0 }, { 0, 1 }, { 1, 1 } }) -- (files list keys sorted)
  ad.obsm.meta = meta
  ad.varm.info = { symbol = { "A", "B" }, length = T.tensor({ 100, 200 }, { dtype = "i64" }) } -- plain: sorted
  return ad
end

describe("data frames in obsm and varm", function()
  it("are checked tables of columns, kept in order", function()
    local ad = with_frame()
    assert.is_true(AD.is_frame(ad.obsm.meta))
    assert.are.same({ "score", "batch", "barcode", "count", "flag" }, AD.keys(ad.obsm.meta))
    assert.are.same({ "length", "symbol" }, AD.keys(ad.varm.info))
    assert.are.same({ "AAA", "CCC", "GGG" }, ad.obsm.meta.barcode)
    -- a column of the wrong length, in the frame or when the frame is assigned
    local ok, err = pcall(function() ad.obsm.meta.extra = T.zeros(4) end)
    assert.is_false(ok)
    assert.matches("column 'extra' has {4} but obsm.meta has 3 rows", err, 1, true)
    ok, err = pcall(function() ad.obsm.bad = { a = { "x", "y" } } end)
    assert.matches("obsm: 'bad': obsm.bad: column 'a' has 2 entries but obsm.bad has 3 rows", err, 1, true)
    ok, err = pcall(function() ad.varm.bad = { a = 5 } end)
    assert.is_false(ok)
    assert.matches("column 'a' must be", err, 1, true)
    ok, err = pcall(function() ad.obsm.nested = { { 1, 2 }, { 3, 4 }, { 5, 6 } } end)
    assert.matches("'nested' must be a tensor or a SparseCSR matrix, or a table of named columns, got a Lua list",
      err, 1, true)
    -- other slots still take matrices only
    assert.has_error(function() ad.layers.bad = { a = T.zeros(3) } end)
    assert.has_error(function() ad.obsp.bad = { a = T.zeros(3) } end)
  end)

  it("round-trip through write_h5ad / read_h5ad", function()
    local ad = with_frame()
    local path = tmpname()
    ad:write_h5ad(path)
    local back = velua.read_h5ad(path)
    os.remove(path)
    assert.is_true(AD.is_frame(back.obsm.meta))
    assert.is_true(AD.is_frame(back.varm.info))
    assert.is_true(same_anndata(ad, back))
    assert.are.same({ "p", "q", "unused" }, back.obsm.meta.batch.categories)
    -- only some obsm keys
    local part = velua.read_h5ad((function() local p = tmpname(); ad:write_h5ad(p); return p end)(),
      { obsm = { "meta" } })
    assert.are.same({ "meta" }, AD.keys(part.obsm))
  end)

  it("are cut by subset, _inplace_subset_obs/_var and copied by copy", function()
    local ad = with_frame()
    local s = ad:subset({ 3, 1 }, { 2 })
    assert.are.same({ 2.5, 0.5 }, s.obsm.meta.score:totable())
    assert.are.same({ "GGG", "AAA" }, s.obsm.meta.barcode)
    assert.are.same({ 2, 2 }, s.obsm.meta.batch.codes:totable())
    assert.are.same({ "p", "q", "unused" }, s.obsm.meta.batch.categories) -- pandas' iloc keeps them
    assert.are.same({ "B" }, s.varm.info.symbol)
    assert.are.same({ 2, 5 }, AD._shape_of(s.obsm.meta)) -- rows, columns
    local c = ad:copy()
    assert.is_true(same_anndata(ad, c))
    c.obsm.meta.score:fill_(0)
    c.obsm.meta.barcode[1] = "TTT"
    assert.are.equal(0.5, ad.obsm.meta.score:get(1))
    assert.are.equal("AAA", ad.obsm.meta.barcode[1])
    local before = ad.obsm.meta
    ad:_inplace_subset_obs({ 2, 3 })
    assert.are.same({ "CCC", "GGG" }, ad.obsm.meta.barcode)
    assert.are.same({ "AAA", "CCC", "GGG" }, before.barcode) -- the old frame keeps its rows
    assert.is_true(same(s.obsm.meta.flag, { values = T.tensor({ true, true }), mask = T.tensor({ true, false }) }))
    ad:_inplace_subset_var({ 1 })
    assert.are.same({ "A" }, ad.varm.info.symbol)
    assert.are.same({ 100 }, ad.varm.info.length:totable())
  end)

  it("are stacked by concat, their columns joined outer as pandas' concat", function()
    local a, b = with_frame(), with_frame()
    b.obsm.meta.score = nil
    b.obsm.meta.extra = T.tensor({ 7, 8, 9 })
    local c = velua.concat({ a, b })
    assert.is_true(AD.is_frame(c.obsm.meta))
    assert.are.same({ "score", "batch", "barcode", "count", "flag", "extra" }, AD.keys(c.obsm.meta))
    local sc = c.obsm.meta.score:totable()
    assert.are.same({ 0.5, 1.5, 2.5 }, { sc[1], sc[2], sc[3] })
    assert.is_true(sc[4] ~= sc[4])
    assert.are.same({ "AAA", "CCC", "GGG", "AAA", "CCC", "GGG" }, c.obsm.meta.barcode)
    assert.are.same({ 6, 2 }, c.obsm.X_pca:shape())
    -- a frame in one object and a matrix in the other: dropped
    b.obsm.meta = T.zeros(3, 2)
    assert.is_nil(velua.concat({ a, b }).obsm.meta)
  end)

  it("a file written by Python anndata 0.8 reads and writes back (needs python3-anndata)", function()
    if not require("support.helpers").python_has("anndata") then
      return require("support.helpers").missing_tool("/usr/bin/python3 cannot import anndata (Debian: python3-anndata)")
    end
    local src, out = tmpname(), tmpname()
    local script = [[
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, anndata
def make():
    obs = pd.DataFrame(index=["c1", "c2", "c3"])
    var = pd.DataFrame(index=["g1", "g2"])
    a = anndata.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2), obs=obs, var=var)
    a.obsm["meta"] = pd.DataFrame({"score": [0.5, 1.5, np.nan], "n": np.array([1, 2, 3]),
        "kind": pd.Categorical(["x", "y", "x"]), "name": ["a", "b", "c"],
        "ok": np.array([True, False, True])}, index=a.obs_names)
    a.varm["info"] = pd.DataFrame({"len": [10.0, 20.0]}, index=a.var_names)
    return a
if sys.argv[1] == "write":
    make().write_h5ad(sys.argv[2])
else:
    a, b = make(), anndata.read_h5ad(sys.argv[2])
    for slot, k in (("obsm", "meta"), ("varm", "info")):
        x, y = getattr(a, slot)[k], getattr(b, slot)[k]
        y = y.astype({c: x[c].dtype for c in x.columns if str(x[c].dtype) == "object"})
        ok = list(x.columns) == list(y.columns) and x.index.equals(y.index)
        for c in x.columns:
            ok = ok and x[c].equals(y[c]) and str(x[c].dtype) == str(y[c].dtype)
        print(slot, k, "SAME" if ok else "DIFF\n%s\n%s\n%s\n%s" % (x, x.dtypes, y, y.dtypes))
]]
    local sp = tmpname(".py")
    local f = assert(io.open(sp, "w"))
    f:write(script)
    f:close()
    local function run(args)
      local p = io.popen("/usr/bin/python3 " .. sp .. " " .. args .. " 2>&1")
      local text = p:read("a")
      p:close()
      return text
    end
    assert.are.equal("", run("write " .. src))
    local ad = velua.read_h5ad(src)
    local meta = ad.obsm.meta
    assert.are.same({ "score", "n", "kind", "name", "ok" }, AD.keys(meta))
    assert.are.same({ 1, 2, 3 }, meta.n:totable())
    assert.are.same({ "x", "y" }, meta.kind.categories)
    assert.are.same({ 1, 2, 1 }, meta.kind.codes:totable())
    assert.are.same({ "a", "b", "c" }, meta.name)
    assert.are.same({ true, false, true }, meta.ok:totable())
    assert.are.same({ 10, 20 }, ad.varm.info.len:totable())
    ad:write_h5ad(out)
    local report = run("check " .. out)
    os.remove(sp)
    os.remove(src)
    os.remove(out)
    assert.are.equal("obsm meta SAME\nvarm info SAME\n", report)
  end)
end)
