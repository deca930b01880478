-- Printing: tostring of an AnnData (anndata's repr layout) and of a figure, and what the
-- notebook kernel shows for them (kernel_server.lua driven directly through its frames).
local velua = require "velua"
local T = velua.tensor

describe("repr", function()
  it("AnnData: anndata's layout, every slot, insertion order (sorted from plain tables), empty slots left out", function()
    local ad = velua.AnnData {
      X = T.zeros(4, 3),
      obs = { n_counts = T.ones(4), clusters = { codes = T.tensor({ 1, 2, 1, 2 }, { dtype = "i64" }),
        categories = { "a", "b" } } },
      uns = { zeta = 1, alpha = { nested = true } },
    }
    -- keys given in a plain table have no order of their own: sorted
    assert.are.equal("AnnData object with n_obs × n_vars = 4 × 3\n"
      .. "    obs: 'clusters', 'n_counts'\n"
      .. "    uns: 'alpha', 'zeta'", tostring(ad))
    ad.obs.batch = T.zeros(4)
    ad.var.gene_ids = { "g1", "g2", "g3" }
    ad.obsm.X_umap = T.zeros(4, 2)
    ad.obsm.X_pca = T.zeros(4, 5)
    ad.varm.PCs = T.zeros(3, 5)
    ad.layers.unspliced = T.zeros(4, 3)
    ad.layers.spliced = T.zeros(4, 3)
    ad.obsp.distances = T.sparse_from_dense(T.eye(4))
    ad.varp.corr = T.eye(3)
    ad.uns.beta = 2
    assert.are.equal("AnnData object with n_obs × n_vars = 4 × 3\n"
      .. "    obs: 'clusters', 'n_counts', 'batch'\n"
      .. "    var: 'gene_ids'\n"
      .. "    uns: 'alpha', 'beta', 'zeta'\n"
      .. "    obsm: 'X_umap', 'X_pca'\n"
      .. "    varm: 'PCs'\n"
      .. "    layers: 'unspliced', 'spliced'\n"
      .. "    obsp: 'distances'\n"
      .. "    varp: 'corr'", tostring(ad))
    -- a subset prints its own sizes with the same keys
    local sub = ad:subset({ 1, 3 }, nil)
    assert.matches("^AnnData object with n_obs × n_vars = 2 × 3\n    obs: 'clusters', 'n_counts', 'batch'\n", tostring(sub))
    -- removing the last key of a slot removes its line
    ad.varp.corr = nil
    assert.is_falsy(tostring(ad):find("varp", 1, true))
    assert.are.equal("layers('unspliced', 'spliced')", tostring(ad.layers))
  end)

  it("figures print their grid and size", function()
    assert.are.equal("velua.Figure(1x1 panels, 420x340 px)", tostring(velua.pl.lines(T.tensor { 1, 3, 2 })))
    assert.are.equal("velua.Figure(2x3 panels, 600x400 px)",
      tostring(velua.pl.figure { ncols = 3, nrows = 2, width = 200, height = 200 }))
  end)

  it("the kernel shows an AnnData as its repr (also after statements) and a figure as SVG", function()
    local server = require "velua.kernel_server"
    local input, output = io.tmpfile(), io.tmpfile()
    local function frame(kind, payload) input:write(kind, " ", #payload, "\n", payload) end
    frame("EXEC", "ad = velua.AnnData{X = T.zeros(2, 3), layers = {spliced = T.zeros(2, 3)}}")
    frame("EXEC", "local n = ad.n_obs\n  ad  \n")   -- statements, then a bare expression
    frame("EXEC", "x = 1\nx +")                      -- a syntax error stays one
    frame("EXEC", "velua.pl.lines(T.tensor{1, 2})")
    frame("QUIT", "")
    input:seek("set")
    server.serve(input, output)
    output:seek("set")
    local replies = {}
    while true do
      local header = output:read("l")
      if not header then break end
      local kind, n = header:match("^(%u+) (%d+)$")
      replies[#replies + 1] = { kind, output:read(tonumber(n)) or "" }
    end
    require("velua").progress.set_display(nil)
    assert.are.same({ "DONE", "" }, replies[1])
    assert.are.same({ "RESULT", "AnnData object with n_obs × n_vars = 2 × 3\n    layers: 'spliced'" }, replies[2])
    assert.are.same({ "DONE", "" }, replies[3])
    assert.are.equal("ERROR", replies[4][1])
    assert.matches("^cell:2: syntax error near", replies[4][2])
    assert.are.same({ "DONE", "" }, replies[5])
    assert.are.equal("SVG", replies[6][1])
    assert.matches("^<svg", replies[6][2])
  end)
end)
