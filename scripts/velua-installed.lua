-- The `velua` command of the installed rock (LuaRocks wraps it with the rock tree's paths).
os.exit(require("velua.cli").main(arg))
