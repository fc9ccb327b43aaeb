-- Argo CD health check for modeldeploy.io/ModelDeployment.
--
-- Argo CD runs this with the global `obj` (the live ModelDeployment) in a
-- sandbox without Lua's string and math libraries, so it uses only the base
-- library. The status is not in kstatus form; it has an explicit phase.
--
--   no status yet, or status older than the spec     Progressing
--   phase Degraded, RolledBack or Invalid            Degraded
--   spec.paused, or phase Paused                     Suspended
--   phase Stable or Retired                          Healthy
--   phase Pending or Progressing                     Progressing
--   any other phase                                  Unknown
--
-- The generation check comes first, so that Argo CD never reports the health of
-- a spec the operator has not seen yet (e.g. a sync that fixes an Invalid spec
-- is Progressing until the operator has looked at it, not Degraded). Degraded
-- comes before Suspended: a paused ModelDeployment that is broken is broken.

local hs = {}

local function message_or(default)
  if obj.status.message ~= nil and obj.status.message ~= "" then
    return obj.status.message
  end
  return default
end

if obj.status == nil or (obj.status.phase == nil and obj.status.observedGeneration == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the modeldeploy operator to observe the ModelDeployment"
  return hs
end

local generation = tonumber(obj.metadata.generation)
local observed = tonumber(obj.status.observedGeneration)
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  if observed == nil then
    hs.message = "Waiting for the modeldeploy operator to observe generation " .. generation
  else
    hs.message = "Waiting for the modeldeploy operator to observe generation " .. generation
      .. " (status is from generation " .. observed .. ")"
  end
  return hs
end

local phase = obj.status.phase

if phase == "Degraded" or phase == "RolledBack" or phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = message_or(phase)
  return hs
end

if (obj.spec ~= nil and obj.spec.paused == true) or phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message_or("Paused")
  return hs
end

if phase == "Stable" or phase == "Retired" then
  hs.status = "Healthy"
  hs.message = message_or(phase)
  return hs
end

if phase == nil or phase == "Pending" or phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = message_or(phase or "Progressing")
  return hs
end

-- A phase this check does not know (a newer operator?): say so rather than guess.
hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
if obj.status.message ~= nil and obj.status.message ~= "" then
  hs.message = hs.message .. ": " .. obj.status.message
end
return hs
