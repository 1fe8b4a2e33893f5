-- Find the GitLab reference or URL under the cursor: #12, !34, group/proj#12, group/proj!34,
-- and issue / work item / merge request URLs. Pure functions, so they are easy to test.
local M = {}

local URL_PATTERN = "https?://[%w%.%-_:@]+[%w%./%-_~%%]*/%-/[%w_]+/%d+[%w%#%?%=&_%-]*"
local REF_PATTERN = "[%w%./_%-]*[#!]%d+"

-- Every candidate on the line, with its start/end columns (1-based, inclusive).
local function candidates(line)
  local found = {}
  local init = 1
  while true do
    local s, e = line:find(URL_PATTERN, init)
    if not s then break end
    table.insert(found, { s = s, e = e, text = line:sub(s, e), url = true })
    init = e + 1
  end
  init = 1
  while true do
    local s, e = line:find(REF_PATTERN, init)
    if not s then break end
    local inside_url = false
    for _, c in ipairs(found) do
      if c.url and s >= c.s and e <= c.e then inside_url = true end
    end
    if not inside_url then table.insert(found, { s = s, e = e, text = line:sub(s, e), url = false }) end
    init = e + 1
  end
  return found
end

-- The reference at `col` (1-based) of `line`, or the only one on the line, or nil.
function M.at(line, col)
  local found = candidates(line)
  for _, c in ipairs(found) do
    if col >= c.s and col <= c.e then return c.text end
  end
  if #found == 1 then return found[1].text end
  return nil
end

return M
