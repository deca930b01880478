-- velua.datasets loaders: the public single-cell data sets analyses start from (scVelo's
-- pancreas and dentategyrus, ...), read from a local file, or downloaded once into a cache.
--
--   local ad = velua.datasets.pancreas()                  -- cache, else download (scVelo's URL)
--   local ad = velua.datasets.pancreas("data/pancreas.h5ad") -- that file (downloaded there if missing)
--   local ad = velua.datasets.pancreas{cache_dir = "/data/velua", download = false}
--
-- The cache is $VELUA_DATA_DIR, else $XDG_CACHE_HOME/velua, else ~/.cache/velua. Downloads use
-- curl into a temporary name in the destination directory, are checked (size and sha256 where
-- known, the HDF5 signature always) and only then renamed, so a broken download never looks
-- like a data set. Offline and missing is an error that says where to put the file.
local options = require "velua.options"

local M = {}

local SCVELO = "https://github.com/theislab/scvelo_notebooks/raw/master/data/"
local HDF5_MAGIC = "\137HDF\r\n\26\n"

-- name -> {file = cache file name, url = download (nil: local only), size =, sha256 =,
--          unique_var_names = make duplicated gene names unique like scVelo, about = text}
local REGISTRY = {
  pancreas = {
    file = "endocrinogenesis_day15.h5ad", url = SCVELO .. "Pancreas/endocrinogenesis_day15.h5ad",
    unique_var_names = true,
    about = "mouse pancreatic endocrinogenesis E15.5 (Bastidas-Ponce et al. 2019), scVelo's "
      .. "pancreas: 3,696 cells x 27,998 genes, spliced/unspliced, clusters, X_umap",
  },
  dentategyrus = {
    file = "10X43_1.h5ad", url = SCVELO .. "DentateGyrus/10X43_1.h5ad",
    about = "mouse dentate gyrus P12/P35 (Hochgerner et al. 2018), scVelo's dentategyrus: "
      .. "2,930 cells x 13,913 genes, spliced/unspliced, clusters, X_umap",
  },
  bonemarrow = {
    file = "human_cd34_bone_marrow.h5ad", url = "https://ndownloader.figshare.com/files/27686835",
    unique_var_names = true,
    about = "human CD34+ bone marrow (Setty et al. 2019), scVelo's bonemarrow",
  },
  gastrulation_erythroid = {
    file = "erythroid_lineage.h5ad", url = "https://ndownloader.figshare.com/files/27686871",
    unique_var_names = true,
    about = "mouse gastrulation, erythroid lineage (Pijuan-Sala et al. 2019), scVelo's "
      .. "gastrulation_erythroid",
  },
  pbmc68k = {
    file = "pbmc68k.h5ad", url = "https://ndownloader.figshare.com/files/27686886",
    unique_var_names = true,
    about = "68k human PBMCs (Zheng et al. 2017), scVelo's pbmc68k",
  },
  forebrain = {
    file = "hgForebrainGlut.loom",
    url = "http://pklab.med.harvard.edu/velocyto/hgForebrainGlut/hgForebrainGlut.loom",
    unique_var_names = true,
    about = "human week-10 forebrain, glutamatergic lineage (La Manno et al. 2018), scVelo's "
      .. "forebrain (loom)",
  },
  dentategyrus_100obs = {
    file = "dentategyrus_100obs.h5ad",
    url = "https://raw.githubusercontent.com/theislab/scvelo/"
      .. "22b6e7e6cdb3c321c5a1be4ab2f29486ba01ab4f/tests/_data/dentategyrus_100obs.h5ad",
    size = 3475248, sha256 = "64386b1da9e7d443565c94c35c0a336565d01753f81e8685149537a398147ea0",
    about = "scVelo 0.3.3's test file: 100 dentate gyrus cells x 13,913 genes, raw spliced/"
      .. "unspliced/ambiguous counts, no annotations",
  },
  dentategyrus_cellrank_50 = {
    file = "cellrank_adata_50.h5ad",
    url = "https://raw.githubusercontent.com/theislab/cellrank/"
      .. "286ebcf575e9dd1a548bdfeaf994a16067691f40/tests/_ground_truth_adatas/adata_50.h5ad",
    size = 804512, sha256 = "0955d4c773d76029b2982dfc314c8e534683bd54cd6fcaa803fc9534cd291a0f",
    about = "CellRank's test data: 50 dentate gyrus cells x 143 genes with scVelo results "
      .. "(velocity, velocity_graph, X_umap)",
  },
  dentategyrus_cellrank_100 = {
    file = "cellrank_adata_100.h5ad",
    url = "https://raw.githubusercontent.com/theislab/cellrank/"
      .. "286ebcf575e9dd1a548bdfeaf994a16067691f40/tests/_ground_truth_adatas/adata_100.h5ad",
    size = 1234389, sha256 = "4fd000861ed6c09ec0f70bdc7cd445988b1ede6ea53f6cf4ff6bf1817687787e",
    about = "CellRank's test data: 100 dentate gyrus cells x 278 genes with scVelo results "
      .. "(anndata 0.7 layout)",
  },
  visium_mouse_brain_subset = {
    file = "squidpy_test_data.h5ad",
    url = "https://raw.githubusercontent.com/scverse/squidpy/"
      .. "be17fcf6afddbf06011429a6cf43b70cb9fac9b4/tests/_data/test_data.h5ad",
    size = 602117, sha256 = "f0227d2639b803401afd65c432ac047c6f04710221dbdf7f3d70a18eff1a3766",
    about = "squidpy's test data: 49 Visium spots of V1_Adult_Mouse_Brain x 1,999 genes, "
      .. "log-normalized, obsm.spatial, leiden clusters",
  },
  -- converted from R data objects by the project (no public .h5ad to download)
  pancreas_veloviz = {
    file = "pancreas_veloviz.h5ad",
    about = "veloviz's 739-cell subsample of the pancreas data x 7,192 genes, raw spliced/"
      .. "unspliced counts, clusters, X_pca (converted from veloviz's pancreas.rda)",
  },
  mouse_olfactory_bulb = {
    file = "mOB.h5ad",
    about = "Spatial Transcriptomics of the mouse olfactory bulb (Stahl et al. 2016): 262 spots "
      .. "x 15,928 genes, obsm.spatial, annot layers (converted from MERINGUE's mOB.rda)",
  },
  ifnb = {
    file = "ifnb1k.h5ad",
    about = "human PBMCs, control vs IFN-beta stimulated (Kang et al. 2018): 832 cells x 14,053 "
      .. "genes, obs.stim, obs.seurat_annotations (converted from seuratTools' ifnb1k.rda)",
  },
}

local NAMES = {}
for name in pairs(REGISTRY) do NAMES[#NAMES + 1] = name end
table.sort(NAMES)
M.names = NAMES

local function getenv(k)
  local v = os.getenv(k)
  if v == nil or v == "" then return nil end
  return v
end

-- The cache directory: $VELUA_DATA_DIR, else $XDG_CACHE_HOME/velua, else ~/.cache/velua.
function M.cache_dir()
  local dir = getenv("VELUA_DATA_DIR")
  if dir then return dir end
  local xdg = getenv("XDG_CACHE_HOME")
  if xdg then return xdg .. "/velua" end
  local home = getenv("HOME")
  if home then return home .. "/.cache/velua" end
  return "./velua_data"
end

-- available() -> {{name=, file=, url=, about=}, ...} in name order.
function M.available()
  local out = {}
  for _, name in ipairs(NAMES) do
    local e = REGISTRY[name]
    out[#out + 1] = { name = name, file = e.file, url = e.url, size = e.size, sha256 = e.sha256,
      about = e.about }
  end
  return out
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, (out:gsub("%s+$", ""))
end

local function have(cmd)
  local ok, out = run("command -v " .. cmd)
  return ok and out ~= ""
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

local function sha256(path)
  for _, cmd in ipairs { "sha256sum", "shasum -a 256" } do
    if have(cmd:match("^%S+")) then
      local ok, out = run(cmd .. " " .. quote(path))
      if ok then return out:match("^(%x+)") end
    end
  end
  return nil
end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

-- Checks a downloaded file against what is known of it; returns nil or the problem.
local function check_file(path, e)
  local f = io.open(path, "rb")
  if not f then return "the downloaded file is missing" end
  local head = f:read(8)
  f:close()
  if head ~= HDF5_MAGIC then
    return "the download is not an HDF5 file (an error page or a moved URL?)"
  end
  if e.size then
    local n = file_size(path)
    if n ~= e.size then return string.format("the download has %d bytes, expected %d", n, e.size) end
  end
  if e.sha256 then
    local h = sha256(path)
    if h and h ~= e.sha256 then
      return string.format("the download has sha256 %s, expected %s", h, e.sha256)
    end
  end
  return nil
end

-- Downloads url to dest through a temporary name in dest's directory; returns true or
-- false and a message.
local function download(url, dest, e, verbose)
  if not have("curl") then return false, "curl is not installed" end
  local ok, out = run("mkdir -p " .. quote(dirname(dest)))
  if not ok then return false, "cannot create " .. dirname(dest) .. ": " .. out end
  local tmp = string.format("%s.part-%d-%s", dest, os.time(), tostring({}):match("0x(%x+)") or "0")
  if verbose then io.stderr:write("velua.datasets: downloading ", url, " to ", dest, "\n") end
  ok, out = run(string.format("curl -fsSL --retry 2 --connect-timeout 20 -o %s %s", quote(tmp),
    quote(url)))
  if not ok then
    os.remove(tmp)
    return false, out ~= "" and out or "curl failed"
  end
  local problem = check_file(tmp, e)
  if problem then
    os.remove(tmp)
    return false, problem
  end
  local renamed, err = os.rename(tmp, dest)
  if not renamed then
    os.remove(tmp)
    return false, "cannot rename the download to " .. dest .. ": " .. tostring(err)
  end
  return true
end

local function parse_args(fname, arg)
  if type(arg) == "string" then return { path = arg, download = true, verbose = true } end
  if arg ~= nil and type(arg) ~= "table" then
    error(string.format("%s: expected a file path or an options table, got %s", fname, type(arg)), 0)
  end
  local o = options.check(fname, arg, { path = options.NONE, cache_dir = options.NONE,
    url = options.NONE, download = true, verbose = true })
  for _, k in ipairs { "path", "cache_dir", "url" } do
    if o[k] ~= nil and type(o[k]) ~= "string" then
      error(string.format("%s: option %s must be a string, got %s", fname, k, type(o[k])), 0)
    end
  end
  return o
end

-- Resolves the local file of data set `name`, downloading it if needed; returns its path.
local function fetch(name, arg, fname)
  local e = REGISTRY[name]
  local o = parse_args(fname, arg)
  local dest = o.path or ((o.cache_dir or M.cache_dir()) .. "/" .. e.file)
  if exists(dest) then return dest, e end
  local url = o.url or e.url
  local where = o.path and ("not found at " .. dest)
    or string.format("not in the cache (%s)", dirname(dest))
  local hint = string.format("copy the file to %s, or pass its path: velua.datasets.%s('/path/to/%s')",
    dest, name, e.file)
  if not url then
    error(string.format("%s: %s is %s and has no public download; %s", fname, e.file, where, hint), 0)
  end
  if not o.download then
    error(string.format("%s: %s is %s and download = false; %s (or download it from %s)", fname,
      e.file, where, hint, url), 0)
  end
  local ok, msg = download(url, dest, e, o.verbose)
  if not ok then
    error(string.format("%s: %s is %s and downloading %s failed: %s. Offline? Then %s", fname, e.file,
      where, url, msg, hint), 0)
  end
  return dest, e
end

-- anndata's var_names_make_unique: later duplicates get "-1", "-2", ... (skipping taken names)
local function make_unique(names)
  local seen, taken, out, changed = {}, {}, {}, false
  for _, v in ipairs(names) do taken[v] = true end
  for i, v in ipairs(names) do
    if seen[v] then
      local k = seen[v]
      local cand
      repeat
        cand = v .. "-" .. k
        k = k + 1
      until not taken[cand]
      seen[v] = k
      taken[cand] = true
      out[i] = cand
      changed = true
    else
      seen[v] = 1
      out[i] = v
    end
  end
  return out, changed
end
M._make_unique = make_unique

-- fetch() raising at the caller of the public function (which must call this directly)
local function fetch_or_raise(name, arg, fname)
  local ok, path, e = pcall(fetch, name, arg, fname)
  if not ok then error((tostring(path):gsub("^[^:\n]*:%d+: ", "")), 3) end
  return path, e
end

local function load(name, arg)
  local fname = "datasets." .. name
  local path, e = fetch_or_raise(name, arg, fname)
  local velua = require "velua"
  local ok, ad = pcall(path:lower():match("%.loom$") and velua.read_loom or velua.read_h5ad, path)
  if not ok then
    error(string.format("%s: cannot read %s: %s", fname, path, tostring(ad):gsub("^[^:\n]*%.lua:%d+: ", "")), 2)
  end
  if e.unique_var_names and type(ad.var_names) == "table" then
    local names, changed = make_unique(ad.var_names)
    if changed then ad.var_names = names end
  end
  return ad
end

-- fetch(name [, path | opts]) -> local path of data set `name` (downloaded if needed).
function M.fetch(name, arg)
  if REGISTRY[name] == nil then
    error(string.format("datasets.fetch: unknown data set '%s' (known: %s)", tostring(name),
      table.concat(NAMES, ", ")), 2)
  end
  return (fetch_or_raise(name, arg, "datasets.fetch"))
end

for _, name in ipairs(NAMES) do
  M[name] = function(arg) return load(name, arg) end
end

return M
