-- Build and install from a checkout, offline:
--   luarocks --lua-version=5.4 make rockspec/velua-dev-1.rockspec
rockspec_format = "3.0"
package = "velua"
version = "dev-1"
source = {
  url = "git+file:///dev/null", -- never fetched: `luarocks make` builds the current checkout
}
description = {
  summary = "Single-cell RNA-velocity analyses in Lua 5.4 on a C tensor core",
  detailed = [[
velua is a Lua 5.4 module with a C core (OpenBLAS) for strided tensors and sparse matrices,
on which its scVelo-style RNA-velocity workflow is built.]],
}
dependencies = {
  "lua >= 5.4",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
  },
  install = {
    bin = { velua = "scripts/velua-installed.lua" },
  },
}
test = {
  type = "command",
  command = "bash scripts/setup.sh test",
}
