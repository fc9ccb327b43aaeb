-- Argo CD action "promote-full" for modeldeploy.io/ModelDeployment: ask the
-- operator to promote the candidate now, skipping the remaining steps and their
-- analysis (status.action PromoteFull), as `kubectl modeldeploy promote --full`
-- does. Argo CD sends the change to the status subresource (see argocd/README.md).
local os = require("os")

local status = obj.status
local paused = obj.spec ~= nil and obj.spec.paused == true
if status == nil or status.candidate == nil then
  error("nothing to promote: the ModelDeployment has no candidate", 0)
end
if paused then
  error("spec.paused is true: unpause in Git before promoting", 0)
end
if status.phase ~= "Progressing" and status.phase ~= "Paused" then
  error("nothing to promote in phase " .. tostring(status.phase), 0)
end

status.action = {}
status.action.type = "PromoteFull"
status.action.requestedAt = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
