-- lore.nvim: sync the GitLab issue or MR under the cursor through lore-daemon.
--
-- :LoreSync  sends lore/syncSurgical with the reference under the cursor; Neovim shows the
-- daemon's $/progress natively; the outcome is echoed and kept in vim.g.lore_last_result (or
-- vim.g.lore_last_error); vim.g.lore_busy is true while a sync is in flight.
local refs = require("lore.refs")

local M = {}

M.config = {
  cmd = nil,            -- default: { vim.g.lore_python or "python3", "-m", "lore_daemon" }
  project = nil,        -- default project for bare #12 / !34 (else vim.g.lore_project)
}

local client_id = nil

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
end

local function start_client()
  if client_id and vim.lsp.get_client_by_id(client_id) then return client_id end
  local cmd = M.config.cmd or { vim.g.lore_python or "python3", "-m", "lore_daemon" }
  local config = {
    name = "lore",
    cmd = cmd,
    root_dir = vim.fn.getcwd(),
    capabilities = vim.lsp.protocol.make_client_capabilities(),
    handlers = {
      ["lore/progress"] = function(_, result)
        vim.g.lore_progress_count = (vim.g.lore_progress_count or 0) + 1
        if result and result.event ~= "report" then
          vim.g.lore_last_phase = result.phase .. ":" .. result.event
        end
      end,
    },
  }
  if vim.lsp.start and vim.fn.has("nvim-0.10") == 1 then
    client_id = vim.lsp.start(config, { attach = false })
  else
    client_id = vim.lsp.start_client(config)
  end
  return client_id
end

local function summarize(result)
  local parts = { string.format("lore: %s", result.status) }
  for _, e in ipairs(result.entities or {}) do
    table.insert(parts, string.format("%s %d %s", e.kind, e.iid, e.outcome))
  end
  for _, f in ipairs(result.entityFailures or {}) do
    table.insert(parts, string.format("FAILED %s %d [%s] %s", f.kind, f.iid, f.stage, f.code))
  end
  return table.concat(parts, "; ")
end

-- Sync `ref` (or the reference under the cursor). `on_done(err, result)` is optional.
function M.sync(ref, on_done)
  if ref == nil or ref == "" then
    local line = vim.api.nvim_get_current_line()
    local col = vim.api.nvim_win_get_cursor(0)[2] + 1
    ref = refs.at(line, col)
  end
  if not ref then
    vim.notify("lore: no GitLab reference under the cursor", vim.log.levels.WARN)
    return false
  end
  local id = start_client()
  local client = id and vim.lsp.get_client_by_id(id)
  if not client then
    vim.notify("lore: could not start lore-daemon", vim.log.levels.ERROR)
    return false
  end
  local params = { refs = { ref }, project = M.config.project or vim.g.lore_project }
  vim.g.lore_last_result = nil
  vim.g.lore_last_error = nil
  vim.g.lore_busy = true
  client.request("lore/syncSurgical", params, function(err, result)
    vim.g.lore_busy = false
    if err then
      local code = err.data and err.data.code or tostring(err.code)
      vim.g.lore_last_error = { code = code, message = err.message }
      vim.notify(string.format("lore: %s: %s", code, err.message), vim.log.levels.ERROR)
    else
      vim.g.lore_last_result = result
      vim.notify(summarize(result), result.status == "succeeded" and vim.log.levels.INFO or vim.log.levels.WARN)
    end
    if on_done then on_done(err, result) end
  end)
  return true
end

function M.stop()
  if client_id then
    local client = vim.lsp.get_client_by_id(client_id)
    if client then client.stop() end
    client_id = nil
  end
end

function M.client_id()
  return client_id
end

return M
