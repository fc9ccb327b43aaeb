-- Argo CD action discovery for modeldeploy.io/ModelDeployment: which of
-- promote, abort and retry apply to the ModelDeployment as it is now.
--
-- The actions write a request to status.action, which the operator carries
-- out and clears; they never touch spec (Argo CD would revert that on the next
-- sync, and spec belongs to Git). Each action.lua repeats the check below and
-- fails with a message when run anyway (e.g. from `argocd app actions run`).
--
--   promote  a candidate is under test (Progressing, or Paused waiting for a
--            promotion) and spec.paused is not set: pausing is decided in Git
--   abort    a candidate is under test (Pending, Progressing, Paused, Degraded)
--            and a stable revision exists to return to
--   retry    the last candidate was rolled back or aborted (RolledBack)

local actions = {}
actions["promote"] = {["disabled"] = true, ["displayName"] = "Promote", ["iconClass"] = "fa fa-fw fa-forward"}
actions["abort"] = {["disabled"] = true, ["displayName"] = "Abort", ["iconClass"] = "fa fa-fw fa-stop"}
actions["retry"] = {["disabled"] = true, ["displayName"] = "Retry", ["iconClass"] = "fa fa-fw fa-redo"}

if obj.status == nil then
  return actions
end

local phase = obj.status.phase
local has_candidate = obj.status.candidate ~= nil
local has_stable = obj.status.stable ~= nil
local paused = obj.spec ~= nil and obj.spec.paused == true

if has_candidate and not paused and (phase == "Progressing" or phase == "Paused") then
  actions["promote"]["disabled"] = false
end
if has_candidate and has_stable and (phase == "Pending" or phase == "Progressing" or phase == "Paused" or phase == "Degraded") then
  actions["abort"]["disabled"] = false
end
if phase == "RolledBack" then
  actions["retry"]["disabled"] = false
end
return actions
