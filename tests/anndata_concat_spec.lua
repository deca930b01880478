-- velua.concat: the inner join (default) and the outer join on var_names, dense and CSR parts,
-- categorical obs columns with different categories, obsm, var columns with merge=, and the
-- same objects concatenated by Python anndata 0.8 (when /usr/bin/python3 has it).
local velua = require "velua"
local T = velua.tensor
local h = require "support.helpers"
local kind_of = require("velua.anndata")._column_kind

local NAN = 0 / 0

local function dense(m) return T.is_sparse(m) and m:to_dense() or m end

-- Two small objects with overlapping genes: a has g3, g1, g2 (dense X, CSR spliced, a dense
-- layer of its own), b has g4, g1 (CSR X, dense spliced).
local function pair(opts)
  opts = opts or {}
  local function mat(rows, sparse)
    local m = T.tensor(rows)
    return sparse and T.sparse_from_dense(m) or m
  end
  local a = velua.AnnData {
    X = mat({ { 1, 0, 2 }, { 0, 3, 0 } }, opts.a_sparse), var_names = { "g3", "g1", "g2" },
    obs_names = { "a1", "a2" },
    obs = { cl = { codes = T.tensor({ 1, 2 }, { dtype = "i64" }), categories = { "x", "y" } },
      n = T.tensor({ 1, 2 }, { dtype = "i64" }), depth = T.tensor({ 0.5, 1.5 }), only_a = { "p", "q" } },
    var = { hv = T.tensor({ true, false, true }), score = T.tensor({ 0.5, 1.5, 2.5 }) },
    layers = { spliced = mat({ { 1, 0, 2 }, { 0, 3, 0 } }, not opts.all_dense), la = T.ones(2, 3) },
    obsm = { X_pca = T.ones(2, 2), only_a = T.ones(2, 1) },
  }
  local b = velua.AnnData {
    X = mat({ { 5, 6 } }, not opts.all_dense), var_names = { "g4", "g1" }, obs_names = { "b1" },
    obs = { cl = { codes = T.tensor({ 1 }, { dtype = "i64" }), categories = { "z" } },
      n = T.tensor({ 7 }, { dtype = "i64" }), depth = T.tensor({ 2.5 }) },
    var = { score = T.tensor({ 9.0, 8.0 }), kind = { "k4", "k1" } },
    layers = { spliced = mat({ { 7, 8 } }, opts.b_sparse_spliced) },
    obsm = { X_pca = T.zeros(1, 2) },
  }
  return a, b
end

local function decoded(col)
  local out = {}
  for i, c in ipairs(col.codes:totable()) do out[i] = c == 0 and "MISSING" or col.categories[c] end
  return out
end

describe("velua.concat", function()
  it("inner join by default: the genes all have, in the first object's order", function()
    local a, b = pair()
    local c = velua.concat({ a, b }, { label = "condition", keys = { "WT", "KO" } })
    assert.are.same({ "g1" }, c.var_names)
    assert.are.same({ { 0 }, { 3 }, { 6 } }, dense(c.X):totable())
    assert.are.same({ "spliced" }, velua.AnnData.keys(c.layers))
    assert.are.same({ { 0 }, { 3 }, { 8 } }, dense(c.layers.spliced):totable())
    assert.are.same({ "cl", "depth", "n", "condition" }, velua.AnnData.keys(c.obs))
    assert.are.same(velua.concat({ a, b }, { join = "inner" }).var_names, c.var_names)
  end)

  it("outer join: the union of genes, 0 where an object lacks a gene or a layer", function()
    for _, case in ipairs {
      { a_sparse = false, b_sparse_spliced = false, all_dense = true },  -- every part dense
      { a_sparse = true, b_sparse_spliced = true },                      -- every part CSR
      { a_sparse = false, b_sparse_spliced = false },                    -- mixed
    } do
      local a, b = pair(case)
      local c = velua.concat({ a, b }, { join = "outer", label = "condition", keys = { "WT", "KO" } })
      assert.are.equal(3, c.n_obs)
      assert.are.same({ "g1", "g2", "g3", "g4" }, c.var_names) -- pandas' union: sorted
      local any_sparse = not case.all_dense
      assert.are.equal(any_sparse, T.is_sparse(c.X))
      assert.are.same({ { 0, 2, 1, 0 }, { 3, 0, 0, 0 }, { 6, 0, 0, 5 } }, dense(c.X):totable())
      assert.are.same({ { 0, 2, 1, 0 }, { 3, 0, 0, 0 }, { 8, 0, 0, 7 } }, dense(c.layers.spliced):totable())
      -- a layer only a has: b's rows are all fill
      assert.are.same({ { 1, 1, 1, 0 }, { 1, 1, 1, 0 }, { 0, 0, 0, 0 } }, dense(c.layers.la):totable())
      if T.is_sparse(c.X) then
        -- CSR parts stay valid CSR: sorted columns in each row, no stored fill
        assert.are.same({ 0, 2, 3, 5 }, c.X:indptr():totable())
        assert.are.same({ 1, 2, 0, 0, 3 }, c.X:indices():totable())
      end
      -- categorical columns: categories united; a column only a has is missing for b
      assert.are.same({ "x", "y", "z" }, c.obs.cl.categories)
      assert.are.same({ 1, 2, 3 }, c.obs.cl.codes:totable())
      assert.are.same({ "p", "q", "MISSING" }, decoded(c.obs.only_a))
      assert.are.same({ "WT", "WT", "KO" }, decoded(c.obs.condition))
      assert.are.same({ 1, 2, 7 }, c.obs.n:totable())
      assert.are.equal("i64", c.obs.n:dtype())
      -- obsm: the keys all objects have
      assert.are.same({ "X_pca" }, velua.AnnData.keys(c.obsm))
      assert.are.same({ { 1, 1 }, { 1, 1 }, { 0, 0 } }, c.obsm.X_pca:totable())
      -- no var columns without merge (anndata's default)
      assert.are.same({}, velua.AnnData.keys(c.var))
    end
  end)

  it("outer join: missing entries of obs columns as pandas fills them, and fill_value", function()
    local a, b = pair()
    b.obs.depth = nil
    b.obs.n = nil
    b.obs.flag = T.tensor({ true })
    local c = velua.concat({ a, b }, { join = "outer" })
    local d = c.obs.depth:totable()
    assert.are.same({ 0.5, 1.5 }, { d[1], d[2] })
    assert.is_true(d[3] ~= d[3]) -- NaN
    assert.are.equal("f64", c.obs.n:dtype()) -- integers with a gap become floats
    assert.is_true(c.obs.n:totable()[3] ~= c.obs.n:totable()[3])
    assert.are.equal("nullable", kind_of(c.obs.flag))
    assert.are.same({ true, true, false }, c.obs.flag.mask:totable())
    -- fill_value (anndata fills dense parts with NaN by default; velua with 0 unless told)
    local f = velua.concat({ a, b }, { join = "outer", fill_value = NAN })
    local x = f.X:to_dense():totable()
    assert.is_true(x[1][4] ~= x[1][4] and x[3][2] ~= x[3][2] and x[3][1] == 6)
    assert.is_true(T.is_sparse(f.X)) -- explicit NaN entries where b lacks g2, g3
    local g = velua.concat({ a, b }, { join = "outer", fill_value = -1 })
    assert.are.same({ { 0, 2, 1, -1 }, { 3, 0, 0, -1 }, { 6, -1, -1, 5 } }, dense(g.X):totable())
  end)

  it("var columns: merge='first' from the first object having them, 'same' when equal", function()
    local a, b = pair()
    local c = velua.concat({ a, b }, { join = "outer", merge = "first" })
    assert.are.same({ "hv", "score", "kind" }, velua.AnnData.keys(c.var))
    local s = c.var.score:totable() -- from a: g1, g2, g3; a lacks g4
    assert.are.same({ 1.5, 2.5, 0.5 }, { s[1], s[2], s[3] })
    assert.is_true(s[4] ~= s[4])
    assert.are.equal("nullable", kind_of(c.var.hv))
    assert.are.same({ false, false, false, true }, c.var.hv.mask:totable())
    assert.are.same({ false, true, true }, { table.unpack(c.var.hv.values:totable(), 1, 3) })
    assert.are.same({ "k1", "MISSING", "MISSING", "k4" }, decoded(c.var.kind))
    local i = velua.concat({ a, b }, { merge = "first" })
    assert.are.same({ 1.5 }, i.var.score:totable())
    assert.are.same({ "k1" }, i.var.kind)
    -- same: score differs on g1, so it is dropped; equal columns are kept
    assert.are.same({}, velua.AnnData.keys(velua.concat({ a, b }, { merge = "same" }).var))
    local same = velua.concat({ a, a }, { join = "outer", merge = "same" })
    assert.are.same({ "g3", "g1", "g2" }, same.var_names) -- equal lists: not sorted
    assert.are.same({ "hv", "score" }, velua.AnnData.keys(same.var))
    -- pandas' union sorts unless the lists are equal or one is empty, also for a subset
    assert.are.same({ "g1", "g2", "g3" }, velua.concat({ a, a:subset(nil, { "g1" }) }, { join = "outer" }).var_names)
    assert.are.same({ "g3", "g1", "g2" }, velua.concat({ a, a:subset(nil, {}) }, { join = "outer" }).var_names)
  end)

  it("checks its options", function()
    local a, b = pair()
    local ok, err = pcall(velua.concat, { a, b }, { join = "left" })
    assert.is_false(ok)
    assert.matches("join must be \"inner\" or \"outer\", got left", err, 1, true)
    ok, err = pcall(velua.concat, { a, b }, { fill_value = "0" })
    assert.matches("fill_value must be a number, got string", err, 1, true)
    assert.has_error(function() velua.concat({ a, b }, { jion = "outer" }) end)
  end)

  it("agrees with Python anndata 0.8's concat (needs python3-anndata)", function()
    if not h.python_has("anndata, scipy") then
      return h.missing_tool("/usr/bin/python3 cannot import anndata (Debian: python3-anndata)")
    end
    local script = h.repo_root() .. "/tests/support/anndata_concat.py"
    for _, join in ipairs { "inner", "outer" } do
      for _, case in ipairs { { all_dense = true }, { a_sparse = true, b_sparse_spliced = true }, {} } do
        local a, b = pair(case)
        local pa, pb = os.tmpname() .. ".h5ad", os.tmpname() .. ".h5ad"
        a:write_h5ad(pa)
        b:write_h5ad(pb)
        local p = io.popen("/usr/bin/python3 " .. script .. " " .. pa .. " " .. pb .. " " .. join .. " 2>&1")
        local text = p:read("a")
        p:close()
        os.remove(pa)
        os.remove(pb)
        local ref = assert(load("local MISSING = 'MISSING'; return " .. text), text)()
        local c = velua.concat({ a, b }, { join = join, label = "condition", keys = { "WT", "KO" },
          index_unique = "-", merge = "first" })
        local where = join .. " " .. (case.all_dense and "dense" or case.a_sparse and "csr" or "mixed")
        assert.are.same(ref.var_names, c.var_names, where)
        assert.are.same(ref.obs_names, c.obs_names, where)
        assert.are.same(ref.X, dense(c.X):to("f64"):totable(), where)
        assert.are.equal(ref.X_sparse, T.is_sparse(c.X), where)
        assert.are.same(velua.AnnData.keys(ref.layers), velua.AnnData.keys(c.layers), where)
        for k, v in pairs(ref.layers) do assert.are.same(v, dense(c.layers[k]):to("f64"):totable(), where .. " " .. k) end
        -- obs and var columns by value (pandas turns united categoricals into strings)
        for _, slot in ipairs { "obs", "var" } do
          local got_keys = velua.AnnData.keys(c[slot])
          table.sort(got_keys)
          assert.are.same(velua.AnnData.keys(ref[slot]), got_keys, where .. " " .. slot)
          for k, want in pairs(ref[slot]) do
            local col, got = c[slot][k], nil
            local kind = kind_of(col)
            if kind == "categorical" then
              got = decoded(col)
            elseif kind == "nullable" then
              got = col.values:totable()
              for i, m in ipairs(col.mask:totable()) do if m then got[i] = "MISSING" end end
            elseif kind == "tensor" then
              got = col:to(col:dtype() == "bool" and "bool" or "f64"):totable()
              for i, v in ipairs(got) do if v ~= v then got[i] = "MISSING" end end
            else
              got = col
            end
            assert.are.same(want, got, where .. " " .. slot .. "." .. k)
          end
        end
        -- obsm: velua keeps the keys all objects have (anndata's outer join also pads the others)
        local kept = velua.AnnData.keys(c.obsm)
        for _, k in ipairs(kept) do
          local found = false
          for _, r in ipairs(ref.obsm) do found = found or r == k end
          assert.is_true(found, where .. " obsm " .. k)
        end
      end
    end
  end)
end)
