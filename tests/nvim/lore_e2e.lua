-- Headless end-to-end script: drives :LoreSync in a real Neovim and writes what happened as JSON.
local out = { progress = {}, results = {} }
local function finish(code)
  local f = io.open(vim.env.LORE_NVIM_OUT, "w")
  f:write(vim.fn.json_encode(out))
  f:close()
  require("lore").stop()
  vim.wait(3000, function() return false end, 50)
  vim.cmd(code == 0 and "qa!" or ("cquit " .. code))
end

vim.opt.rtp:prepend(vim.env.LORE_NVIM_PLUGIN)
vim.cmd("runtime plugin/lore.lua")
vim.g.lore_python = vim.env.LORE_PYTHON
vim.g.lore_project = "group/project"

vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(ev)
    local value = ev.data and ev.data.params and ev.data.params.value or {}
    table.insert(out.progress, value.kind or "?")
  end,
})

local function sync_line(line, col)
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { line })
  vim.api.nvim_win_set_cursor(0, { 1, col })
  vim.cmd("LoreSync")
  local ok = vim.wait(60000, function() return vim.g.lore_busy == false end, 20)
  table.insert(out.results, { ok = ok, result = vim.g.lore_last_result, error = vim.g.lore_last_error })
end

local ok, err = pcall(function()
  sync_line("Follow-up of group/project#6 please", 16)   -- qualified ref under the cursor
  sync_line("and !4 too", 5)                                -- short MR ref, project from g:lore_project
  sync_line("see " .. vim.env.LORE_SIM_URL .. "/group/project/-/issues/4404#note_1", 10)  -- missing issue
end)
out.lua_error = ok and vim.NIL or tostring(err)
out.phase = vim.g.lore_last_phase
finish(ok and 0 or 3)
