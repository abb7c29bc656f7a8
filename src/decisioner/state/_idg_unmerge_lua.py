"""Lua source of the identity graph's removal functions: recomputing persons from their
evidence, erasure with tombstones (``dcs1_idg_forget``) and unlink with do-not-link pairs
(``dcs1_idg_unlink``). It follows :mod:`._idg_lua` in the library and uses its helpers;
``identity/unmerge.py`` and ``graph_recompute`` in ``_kernels/graph.py`` are the embedded twins."""

from __future__ import annotations

from typing import Final

__all__ = ["UNMERGE_LUA"]

UNMERGE_LUA: Final = r"""
-- ---------------------------------------------------------------- recomputing and removal
-- Recompute the components of `mem` (live keys of one person) from their evidence: the members
-- become single identifiers, then their edges inside `mem` are replayed in evidence order under
-- the rules. Pieces: largest first (ties: the oldest identifier); the first keeps `keep`
-- (when > 0), the others get new ids. Returns the piece ids in that order.
local function recompute(mem, keep)
  local rules, cap, nslots, lim = CFG.rules, CFG.cap, CFG.nslots, CFG.lim
  local inset, parent, psize, pflags, pcnt, minborn = {}, {}, {}, {}, {}, {}
  for _, k in ipairs(mem) do
    inset[k] = true
    parent[k] = k
    local nd = nget(k)
    psize[k], pflags[k], pcnt[k], minborn[k] = 1, 0, zeros(), nd.born
    if nd.slot >= 0 and nd.slot < nslots then pcnt[k][nd.slot] = 1 end
    if bit.band(nd.state, DNL_BIT) ~= 0 then pflags[k] = ROW_DNL end
  end
  local function find(x)
    while parent[x] ~= x do
      parent[x] = parent[parent[x]]
      x = parent[x]
    end
    return x
  end
  local edges = {}
  for _, k in ipairs(mem) do
    local blob = aget(k)
    for i = 1, #blob, EDGE_LEN do
      local o, seq, _, _, dir = struct.unpack(EDGE, blob, i)
      if dir == 0 and inset[o] then edges[#edges + 1] = {seq, k, o} end
    end
  end
  table.sort(edges, function(x, y) return x[1] < y[1] end)
  for _, e in ipairs(edges) do
    local ra, rb = find(e[2]), find(e[3])
    if ra ~= rb then
      local ok = true
      if rules then
        if cap > 0 and psize[ra] + psize[rb] > cap then
          ok = false
        else
          for s = 0, nslots - 1 do
            if pcnt[ra][s] + pcnt[rb][s] > lim[s] then ok = false; break end
          end
        end
      end
      if ok and bit.band(pflags[ra], ROW_DNL) ~= 0 and bit.band(pflags[rb], ROW_DNL) ~= 0 then
        for _, k in ipairs(mem) do
          if find(k) == ra then
            for _, o in ipairs(partners(k)) do
              if inset[o] and find(o) == rb then ok = false end
            end
          end
        end
      end
      if ok then
        if psize[ra] < psize[rb] then ra, rb = rb, ra end
        parent[rb] = ra
        psize[ra] = psize[ra] + psize[rb]
        pflags[ra] = bit.bor(pflags[ra], pflags[rb])
        for s = 0, nslots - 1 do pcnt[ra][s] = pcnt[ra][s] + pcnt[rb][s] end
        if minborn[rb] < minborn[ra] then minborn[ra] = minborn[rb] end
      end
    end
  end
  local pieces, keys_of = {}, {}
  for _, k in ipairs(mem) do
    local r = find(k)
    if not keys_of[r] then keys_of[r] = {}; pieces[#pieces + 1] = r end
    local t = keys_of[r]
    t[#t + 1] = k
  end
  table.sort(pieces, function(x, y)
    if psize[x] ~= psize[y] then return psize[x] > psize[y] end
    return minborn[x] < minborn[y]
  end)
  local ids = {}
  for i, r in ipairs(pieces) do
    local pid = keep
    if i > 1 or keep <= 0 then
      pid = next_id('pid')
      count('profiles', 1)
    end
    ids[i] = pid
    for _, k in ipairs(keys_of[r]) do
      local nd = nget(k)
      nd.pid = pid
      nset(k, nd)
    end
    pset(pid, {size = psize[r], flags = pflags[r], cnt = pcnt[r], members = table.concat(keys_of[r])})
  end
  return ids
end

local function tag_matches(nd, tag) return tag == 0 or nd.tag == 0 or nd.tag == tag end

-- ARGV: n, then per identifier: key, tag, type, slot (or 'p', person id: all its identifiers).
-- Erase the identifiers and keep tombstones
-- (also for identifiers never seen). Returns {kept person (0: none), n new, new ids..., erased ids...}.
local function idg_forget(keys, args)
  local err = begin(keys)
  if err then return err end
  local by_pid, pids, gone = {}, {}, {}
  if args[1] == 'p' then  -- every identifier of one person
    local pid = tonumber(args[2])
    local p = pget(pid)
    if p then
      for _, k in ipairs(members_of(p)) do gone[k] = true end
      pids[1] = pid
    end
  end
  local n = (args[1] == 'p') and 0 or tonumber(args[1])
  for j = 1, n do
    local o = 1 + 4 * (j - 1)
    local key, tag = args[o + 1], tonumber(args[o + 2])
    local nd = nget(key)
    if not nd then
      nset(key, {tag = tag, pid = 0, born = next_id('born'), seen = 0, type = tonumber(args[o + 3]),
                 slot = tonumber(args[o + 4]), state = TOMB})
      count('tombstones', 1)
    elseif tag_matches(nd, tag) and bit.band(nd.state, 15) == LIVE and not gone[key] then
      gone[key] = true
      if not by_pid[nd.pid] then by_pid[nd.pid] = true; pids[#pids + 1] = nd.pid end
    end
  end
  table.sort(pids)
  local groups = {}
  for _, pid in ipairs(pids) do groups[#groups + 1] = {pid, members_of(pget(pid))} end
  for key, _ in pairs(gone) do
    drop_edges(key)
    drop_dnl(key)
    local nd = nget(key)
    nd.pid, nd.state = 0, TOMB
    nset(key, nd)
    count('identifiers', -1)
    count('tombstones', 1)
  end
  local kept, new_ids, erased = 0, {}, {}
  for _, g in ipairs(groups) do
    local rest = {}
    for _, k in ipairs(g[2]) do if not gone[k] then rest[#rest + 1] = k end end
    if #rest == 0 then
      erased[#erased + 1] = g[1]
      pdel(g[1])
      count('profiles', -1)
    else
      local ids = recompute(rest, g[1])
      kept = g[1]
      for i = 2, #ids do new_ids[#new_ids + 1] = ids[i] end
    end
  end
  finish()
  local out = {kept, #new_ids}
  for _, v in ipairs(new_ids) do out[#out + 1] = v end
  for _, v in ipairs(erased) do out[#out + 1] = v end
  return out
end

-- ARGV: key, tag. Detach the identifier into a person of its own, with do-not-link pairs to every
-- identifier of its person it has evidence with; the rest is recomputed and keeps the id.
-- Returns {kept person, n new, new ids...} ({0, 0} when the identifier is not linked).
local function idg_unlink(keys, args)
  local err = begin(keys)
  if err then return err end
  local x, tag = args[1], tonumber(args[2])
  local nd = nget(x)
  if not nd or bit.band(nd.state, 15) ~= LIVE or not tag_matches(nd, tag) then
    return redis.error_reply('DCSSCHEMA expected a linked identifier, got one that is unknown, blocked or erased' ..
      ' - at `ids`')
  end
  local pid = nd.pid
  local mem = members_of(pget(pid))
  if #mem <= 1 then return {pid, 0} end
  local inside = {}
  for _, k in ipairs(mem) do inside[k] = true end
  local blob = aget(x)
  for i = 1, #blob, EDGE_LEN do
    local o = string.sub(blob, i, i + 7)
    if inside[o] and o ~= x then add_dnl(x, o) end
  end
  local rest = {}
  for _, k in ipairs(mem) do if k ~= x then rest[#rest + 1] = k end end
  local alone = recompute({x}, 0)
  local ids = recompute(rest, pid)
  finish()
  local out = {pid, #ids}
  out[#out + 1] = alone[1]
  for i = 2, #ids do out[#out + 1] = ids[i] end
  out[2] = #out - 2
  return out
end

redis.register_function('dcs1_idg_forget', idg_forget)
redis.register_function('dcs1_idg_unlink', idg_unlink)
"""
