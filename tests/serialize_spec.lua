-- velua.save / velua.load and the HDF5 handle functions underneath.
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

local function tmpfile(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. (suffix or ".h5")
end

describe("velua.save / velua.load", function()
  it("round-trips tensors of every dtype, numbers, strings, booleans and nested tables", function()
    local path = tmpfile()
    local value = {
      f32 = T.tensor({ { 1.5, -2 }, { 3, 4.25 } }),
      f64 = T.tensor({ 1e-300, 1e300 }, { dtype = "f64" }),
      i64 = T.tensor({ math.maxinteger, math.mininteger, 0 }, { dtype = "i64" }),
      b = T.tensor({ true, false, true }),
      scalar = T.tensor(7.5),
      empty = T.zeros(0, 3),
      int = 42, float = 0.1, str = "héllo/world", yes = true, no = false,
      [1] = "first", [2.5] = "two and a half",
      nested = { a = { b = { c = T.arange(5) } } },
    }
    velua.save(path, value)
    local v = velua.load(path)
    os.remove(path)
    assert.are.same(value.f32:totable(), v.f32:totable())
    assert.are.equal("f32", v.f32:dtype())
    assert.are.same({ 1e-300, 1e300 }, v.f64:totable())
    assert.are.same({ math.maxinteger, math.mininteger, 0 }, v.i64:totable())
    assert.are.same({ true, false, true }, v.b:totable())
    assert.are.equal(0, v.scalar:dim())
    assert.are.equal(7.5, v.scalar:item())
    assert.are.same({ 0, 3 }, v.empty:shape())
    assert.are.equal(42, v.int)
    assert.are.equal("integer", math.type(v.int))
    assert.are.equal(0.1, v.float)
    assert.are.equal("héllo/world", v.str)
    assert.is_true(v.yes)
    assert.is_false(v.no)
    assert.are.equal("first", v[1])
    assert.are.equal("two and a half", v[2.5])
    assert.are.same({ 0, 1, 2, 3, 4 }, v.nested.a.b.c:totable())
  end)

  it("saves non-contiguous views by value", function()
    local path = tmpfile()
    local base = T.arange(12):reshape(3, 4)
    velua.save(path, base:t())
    local v = velua.load(path)
    os.remove(path)
    assert.are.same(base:t():totable(), v:totable())
  end)

  it("leaves no file behind when saving fails", function()
    local path = tmpfile()
    local ok, err = pcall(velua.save, path, { fn = print })
    assert.is_false(ok)
    assert.is_truthy(err:find("cannot store a value of type function", 1, true), err)
    assert.is_nil(io.open(path))
    local dir = path:match("^(.*)/")
    local p = io.popen("ls " .. dir)
    local listing = p:read("a")
    p:close()
    assert.is_nil(listing:find(path:match("[^/]+$") .. ".tmp", 1, true))
  end)

  it("replaces an existing file only when complete", function()
    local path = tmpfile()
    velua.save(path, { a = 1 })
    pcall(velua.save, path, { a = 2, bad = coroutine.create(print) })
    assert.are.equal(1, velua.load(path).a)
    os.remove(path)
  end)

  it("refuses cycles", function()
    local t = {}
    t.self = t
    local ok, err = pcall(velua.save, tmpfile(), t)
    assert.is_false(ok)
    assert.is_truthy(err:find("cycle", 1, true))
  end)

  it("gives clear errors for missing, foreign, non-HDF5 and truncated files", function()
    local ok, err = pcall(velua.load, "/nonexistent/file.h5")
    assert.is_false(ok)
    assert.is_truthy(err:find("no such file", 1, true), err)

    local txt = tmpfile(".txt")
    local f = assert(io.open(txt, "w"))
    f:write("not hdf5 at all")
    f:close()
    ok, err = pcall(velua.load, txt)
    assert.is_false(ok)
    assert.is_truthy(err:find("not an HDF5 file", 1, true), err)
    os.remove(txt)

    local foreign = tmpfile()
    local h = core.h5_open(foreign, "w")
    core.h5_write(h, "/x", T.ones(3))
    core.h5_close(h)
    ok, err = pcall(velua.load, foreign)
    assert.is_false(ok)
    assert.is_truthy(err:find("not one written by velua.save", 1, true), err)
    os.remove(foreign)

    local good = tmpfile()
    velua.save(good, { w = T.ones(100, 100) })
    local data = assert(io.open(good, "rb")):read("a")
    for _, frac in ipairs { 0.01, 0.1, 0.3, 0.5, 0.9, 0.99 } do
      local cut = tmpfile()
      local g = assert(io.open(cut, "wb"))
      g:write(data:sub(1, math.floor(#data * frac)))
      g:close()
      ok, err = pcall(velua.load, cut)
      assert.is_false(ok, "truncated at " .. frac .. " loaded")
      assert.is_truthy(err:find("^load: "), err)
      os.remove(cut)
    end
    os.remove(good)
  end)
end)

describe("HDF5 handles", function()
  it("write and read datasets, row ranges, strings and attributes", function()
    local path = tmpfile()
    local h = core.h5_open(path, "w")
    core.h5_write(h, "/g/m", T.arange(20):reshape(5, 4):to("f64"), 4)
    core.h5_write_strings(h, "/g/names", { "a", "bb", "" })
    core.h5_write_attr(h, "/g", "encoding-type", "dict")
    core.h5_write_attr(h, "/g", "shape", T.tensor({ 5, 4 }, { dtype = "i64" }))
    core.h5_write_attr(h, "/g", "cols", { "x", "y" })
    core.h5_close(h)
    h = core.h5_open(path)
    assert.are.equal("group", core.h5_kind(h, "/g"))
    assert.are.equal("dataset", core.h5_kind(h, "/g/m"))
    assert.is_nil(core.h5_kind(h, "/nope/deeper"))
    assert.are.same({ "m", "names" }, core.h5_list(h, "/g"))
    assert.are.same({ { 8, 9, 10, 11 }, { 12, 13, 14, 15 } }, core.h5_read(h, "/g/m", "i64", 3, 4):totable())
    assert.are.same({ "a", "bb", "" }, core.h5_read_strings(h, "/g/names"))
    assert.are.equal("dict", core.h5_read_attr(h, "/g", "encoding-type"))
    assert.are.same({ 5, 4 }, core.h5_read_attr(h, "/g", "shape"):totable())
    assert.are.same({ "x", "y" }, core.h5_read_attr(h, "/g", "cols"))
    local info = core.h5_info(h, "/g/m")
    assert.are.same({ class = "float", size = 8, shape = { 5, 4 }, variable_string = false, filter_ok = true }, info)
    local ok, err = pcall(core.h5_read, h, "/g/m", "f32", 4, 9)
    assert.is_false(ok)
    assert.is_truthy(err:find("last row", 1, true), err)
    ok, err = pcall(core.h5_read_attr, h, "/g", "missing")
    assert.is_truthy(err:find("has no attribute 'missing'", 1, true), err)
    core.h5_close(h)
    ok, err = pcall(core.h5_list, h, "/")
    assert.is_truthy(err:find("closed", 1, true), err)
    os.remove(path)
  end)
end)
