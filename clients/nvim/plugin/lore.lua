if vim.g.loaded_lore then return end
vim.g.loaded_lore = true

vim.api.nvim_create_user_command("LoreSync", function(opts)
  require("lore").sync(opts.args ~= "" and opts.args or nil)
end, { nargs = "?", desc = "Sync the GitLab issue or MR under the cursor (or the given reference)" })

vim.api.nvim_create_user_command("LoreStop", function()
  require("lore").stop()
end, { desc = "Stop the lore-daemon client" })
