-- Argo CD action "abort" for modeldeploy.io/ModelDeployment: ask the operator
-- to roll the candidate back to the stable revision and stop (status.action
-- Abort), as `kubectl modeldeploy abort` does. Argo CD sends the change to the
-- status subresource (see argocd/README.md).
local os = require("os")

local status = obj.status
if status == nil or status.candidate == nil then
  error("nothing to abort: the ModelDeployment has no candidate", 0)
end
if status.stable == nil then
  error("nothing to return to: the ModelDeployment has no stable revision yet", 0)
end
local phase = status.phase
if phase ~= "Pending" and phase ~= "Progressing" and phase ~= "Paused" and phase ~= "Degraded" then
  error("nothing to abort in phase " .. tostring(phase), 0)
end

status.action = {}
status.action.type = "Abort"
status.action.requestedAt = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
