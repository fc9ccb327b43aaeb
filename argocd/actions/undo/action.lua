-- Argo CD action "undo" for modeldeploy.io/ModelDeployment: ask the operator to
-- return to an earlier revision (status.action Undo), as `kubectl modeldeploy
-- undo` does. The optional action parameter toRevision names the revision (Argo
-- CD's UI asks for it); left empty, or where Argo CD passes no parameters (the
-- CLI, Argo CD before action parameters), it is the revision promoted before the
-- stable one, which the operator picks. A candidate under test is aborted. Argo
-- CD sends the change to the status subresource (see argocd/README.md).
local os = require("os")

local status = obj.status
if status == nil or status.stable == nil then
  error("nothing to undo: the ModelDeployment has no stable revision", 0)
end
if status.phase == "Invalid" or status.phase == "Retired" then
  error("nothing to undo in phase " .. tostring(status.phase), 0)
end

local current = status.stable.revision
local target = nil
if actionParams ~= nil and actionParams.toRevision ~= nil and actionParams.toRevision ~= "" then
  target = actionParams.toRevision
end

-- Promoted revisions other than the stable one, newest first: where undo can go.
local earlier = {}
local history = status.history or {}
for i = #history, 1, -1 do
  local entry = history[i]
  if entry.outcome == "Promoted" and entry.revision ~= current then
    table.insert(earlier, entry.revision)
  end
end

if target == nil then
  if #earlier == 0 then
    error("nothing to undo: no revision was promoted before " .. tostring(current), 0)
  end
elseif target == current then
  error(target .. " is already the stable revision", 0)
else
  local known = false
  for _, revision in ipairs(history) do
    if revision.revision == target then
      known = true
    end
  end
  if not known then
    error(target .. " is not in status.history: undo goes to a revision this ModelDeployment had", 0)
  end
end

status.action = {}
status.action.type = "Undo"
if target ~= nil then
  status.action.toRevision = target
end
status.action.requestedAt = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
