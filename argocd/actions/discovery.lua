-- Argo CD action discovery for modeldeploy.io/ModelDeployment: which of
-- promote, promote-full, abort, retry and undo apply to the ModelDeployment as
-- it is now.
--
-- The actions write a request to status.action, which the operator carries
-- out and clears; they never touch spec (Argo CD would revert that on the next
-- sync, and spec belongs to Git). Each action.lua repeats the check below and
-- fails with a message when run anyway (e.g. from `argocd app actions run`).
--
--   promote  a candidate is under test (Progressing, or Paused waiting for a
--            promotion) and spec.paused is not set: pausing is decided in Git
--   promote-full  as promote (it skips the remaining steps and their analysis)
--   abort    a candidate is under test (Pending, Progressing, Paused, Degraded)
--            and a stable revision exists to return to
--   retry    the last candidate was rolled back or aborted (RolledBack)
--   undo     a stable revision exists, the spec is valid and not retired, and
--            status.history has a revision promoted before it; the optional
--            parameter toRevision names another revision of the history

local actions = {}
actions["promote"] = {["disabled"] = true, ["displayName"] = "Promote", ["iconClass"] = "fa fa-fw fa-forward"}
actions["abort"] = {["disabled"] = true, ["displayName"] = "Abort", ["iconClass"] = "fa fa-fw fa-stop"}
actions["retry"] = {["disabled"] = true, ["displayName"] = "Retry", ["iconClass"] = "fa fa-fw fa-redo"}
actions["promote-full"] = {["disabled"] = true, ["displayName"] = "Promote Full", ["iconClass"] = "fa fa-fw fa-fast-forward"}
actions["undo"] = {
  ["disabled"] = true, ["displayName"] = "Undo", ["iconClass"] = "fa fa-fw fa-undo",
  ["params"] = {{["name"] = "toRevision"}},
}

if obj.status == nil then
  return actions
end

local phase = obj.status.phase
local has_candidate = obj.status.candidate ~= nil
local has_stable = obj.status.stable ~= nil
local paused = obj.spec ~= nil and obj.spec.paused == true

if has_candidate and not paused and (phase == "Progressing" or phase == "Paused") then
  actions["promote"]["disabled"] = false
  actions["promote-full"]["disabled"] = false
end
if has_candidate and has_stable and (phase == "Pending" or phase == "Progressing" or phase == "Paused" or phase == "Degraded") then
  actions["abort"]["disabled"] = false
end
if phase == "RolledBack" then
  actions["retry"]["disabled"] = false
end
if has_stable and phase ~= "Invalid" and phase ~= "Retired" then
  local current = obj.status.stable.revision
  for _, entry in ipairs(obj.status.history or {}) do
    if entry.outcome == "Promoted" and entry.revision ~= current then
      actions["undo"]["disabled"] = false
    end
  end
end
return actions
