-- Argo CD action "retry" for modeldeploy.io/ModelDeployment: ask the operator
-- to start the rolled-back or aborted candidate again (status.action Retry), as
-- `kubectl modeldeploy retry` does. Argo CD sends the change to the status
-- subresource (see argocd/README.md).
local os = require("os")

local status = obj.status
if status == nil or status.phase ~= "RolledBack" then
  local phase = nil
  if status ~= nil then
    phase = status.phase
  end
  error("nothing to retry in phase " .. tostring(phase) .. ": retry follows a rollback or an abort", 0)
end

status.action = {}
status.action.type = "Retry"
status.action.requestedAt = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
