"""Lua source of the identity graph functions (see :mod:`decisioner.state.identity` for the
layout they keep and the rules they follow; ``_kernels/graph.py`` is the embedded twin)."""

from __future__ import annotations

from typing import Final

__all__ = ["IDENTITY_LUA"]

IDENTITY_LUA: Final = r"""
-- ---------------------------------------------------------------- identity graph (dcs1_idg_*)
-- KEYS: 1 nodes, 2 persons, 3 adjacency, 4 do-not-link, 5 counters, 6 config (one hash tag).
-- Nodes, persons and adjacency are spread over NB bucket hashes (<name>:<bucket>, bucket = the
-- key's low 16 bits mod NB, or the person id mod NB): small hashes keep Redis's compact listpack
-- encoding, half the memory of one big hash table. All keys share the hash tag, so one slot.
local NODE = '<I4i8i8i4bbB'        -- tag, person, born, seen (minutes), type, slot, state
local EDGE = '<c8i8i8i2B'          -- other key, sequence, time ms, source, 0 = this end is `a`
local EDGE_LEN = 27
local LIVE, BLOCKED, TOMB = 0, 1, 2
local DNL_BIT = 128
local ROW_DNL = 1
local S_NEW, S_REFUSED, S_SUPPRESSED, S_ANONYMOUS, S_COLLISION = 1, 2, 4, 8, 16
local EPOCH_MS, MINUTE_MS = 946684800000, 60000

local KN, KP, KA, KD, KC, KG, NB
local NC, ND, AC, AD, PC, PD, CNT, CFG

local function kbucket(key) return (string.byte(key, 1) + 256 * string.byte(key, 2)) % NB end
local function nkey(key) return KN .. ':' .. kbucket(key) end
local function akey(key) return KA .. ':' .. kbucket(key) end
local function pkey(pid) return KP .. ':' .. (pid % NB) end

local function begin(keys)
  KN, KP, KA, KD, KC, KG = keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
  NC, ND, AC, AD, PC, PD, CNT = {}, {}, {}, {}, {}, {}, {}
  local raw = redis.call('HMGET', KG, 'rules', 'cap', 'nslots', 'limits', 'nb')
  if not raw[1] then
    return redis.error_reply('DCSGONE expected the identity graph on the server, got none (a server that ' ..
      'restarted without persistence, or was flushed?) - at `state`')
  end
  CFG = {rules = raw[1] == '1', cap = tonumber(raw[2]), nslots = tonumber(raw[3]), lim = {}}
  NB = tonumber(raw[5])
  local s = 0
  for v in string.gmatch(raw[4], '[^,]+') do CFG.lim[s] = tonumber(v); s = s + 1 end
  return nil
end

local function count(name, d) CNT[name] = (CNT[name] or 0) + d end

local function next_id(name)
  return redis.call('HINCRBY', KC, name, 1)
end

-- nodes: read once, written back at the end
local function nget(key)
  local nd = NC[key]
  if nd == nil then
    local v = redis.call('HGET', nkey(key), key)
    if not v then NC[key] = false; return nil end
    local tag, pid, born, seen, typ, slot, st = struct.unpack(NODE, v)
    nd = {tag = tag, pid = pid, born = born, seen = seen, type = typ, slot = slot, state = st}
    NC[key] = nd
  end
  if nd == false then return nil end
  return nd
end

local function nset(key, nd) NC[key] = nd; ND[key] = true end

-- persons: size, flags, per-slot counts, then the member keys (8 bytes each)
local function pget(pid)
  local p = PC[pid]
  if p == nil then
    local v = redis.call('HGET', pkey(pid), pid)
    if not v then return nil end
    local size, flags = struct.unpack('<i4i4', v)
    local cnt = {}
    for s = 0, CFG.nslots - 1 do cnt[s] = struct.unpack('<H', v, 9 + 2 * s) end
    local head = 8 + 2 * CFG.nslots
    p = {size = size, flags = flags, cnt = cnt, members = string.sub(v, head + 1)}
    PC[pid] = p
  end
  return p
end

local function pset(pid, p) PC[pid] = p; PD[pid] = p end
local function pdel(pid) PC[pid] = nil; PD[pid] = false end

local function members_of(p)
  local out = {}
  for i = 1, #p.members, 8 do out[#out + 1] = string.sub(p.members, i, i + 7) end
  return out
end

-- adjacency (evidence): one blob of EDGE records per key
local function aget(key)
  local b = AC[key]
  if b == nil then
    b = redis.call('HGET', akey(key), key) or ''
    AC[key] = b
  end
  return b
end

local function aset(key, b) AC[key] = b; AD[key] = true end

local function has_edge(a, b)
  local x, y = aget(a), aget(b)
  local blob, other = x, b
  if #y < #x then blob, other = y, a end
  for i = 1, #blob, EDGE_LEN do
    if string.sub(blob, i, i + 7) == other then return true end
  end
  return false
end

local function add_edge(a, b, t, src)
  local seq = next_id('seq')
  aset(a, aget(a) .. struct.pack(EDGE, b, seq, t, src, 0))
  aset(b, aget(b) .. struct.pack(EDGE, a, seq, t, src, 1))
  count('edges', 1)
end

local function drop_edges(x)
  -- every edge of x leaves both ends
  local blob = aget(x)
  for i = 1, #blob, EDGE_LEN do
    local o = string.sub(blob, i, i + 7)
    local ob = aget(o)
    local keep = {}
    for k = 1, #ob, EDGE_LEN do
      if string.sub(ob, k, k + 7) ~= x then keep[#keep + 1] = string.sub(ob, k, k + EDGE_LEN - 1) end
    end
    aset(o, table.concat(keep))
    count('edges', -1)
  end
  aset(x, '')
end

-- do-not-link partners: one blob of 8-byte keys per key
local function dget(key) return redis.call('HGET', KD, key) or '' end

local function partners(key)
  local out, b = {}, dget(key)
  for i = 1, #b, 8 do out[#out + 1] = string.sub(b, i, i + 7) end
  return out
end

local function drop_dnl(x)
  for _, o in ipairs(partners(x)) do
    local keep = {}
    for _, q in ipairs(partners(o)) do if q ~= x then keep[#keep + 1] = q end end
    if #keep == 0 then
      redis.call('HDEL', KD, o)
      local nd = nget(o)
      if nd then nd.state = bit.band(nd.state, 127); nset(o, nd) end
    else
      redis.call('HSET', KD, o, table.concat(keep))
    end
    count('dnl', -1)
  end
  redis.call('HDEL', KD, x)
end

local function add_dnl(a, b)
  for _, q in ipairs(partners(a)) do if q == b then return end end
  redis.call('HSET', KD, a, dget(a) .. b)
  redis.call('HSET', KD, b, dget(b) .. a)
  for _, k in ipairs({a, b}) do
    local nd = nget(k)
    nd.state = bit.bor(nd.state, DNL_BIT)
    nset(k, nd)
  end
  count('dnl', 1)
end

-- true when a do-not-link pair joins a member of person `r` and a person in `side`
local function dnl_between(r_members, side)
  for _, k in ipairs(r_members) do
    local nd = nget(k)
    if nd and bit.band(nd.state, DNL_BIT) ~= 0 then
      for _, o in ipairs(partners(k)) do
        local on = nget(o)
        if on and side[on.pid] then return true end
      end
    end
  end
  return false
end

local function finish()
  local by_bucket = {}
  for key, _ in pairs(ND) do
    local nd = NC[key]
    local hk = nkey(key)
    local nargs = by_bucket[hk]
    if not nargs then nargs = {}; by_bucket[hk] = nargs end
    nargs[#nargs + 1] = key
    nargs[#nargs + 1] = struct.pack(NODE, nd.tag, nd.pid, nd.born, nd.seen, nd.type, nd.slot, nd.state)
  end
  for hk, nargs in pairs(by_bucket) do
    for i = 1, #nargs, 1000 do  -- in chunks: unpack() is bounded by Lua's stack
      redis.call('HSET', hk, unpack(nargs, i, math.min(i + 999, #nargs)))
    end
  end
  for key, _ in pairs(AD) do
    local b = AC[key]
    if b == '' then redis.call('HDEL', akey(key), key) else redis.call('HSET', akey(key), key, b) end
  end
  for pid, p in pairs(PD) do
    if p == false then
      redis.call('HDEL', pkey(pid), pid)
    else
      local parts = {struct.pack('<i4i4', p.size, p.flags)}
      for s = 0, CFG.nslots - 1 do parts[#parts + 1] = struct.pack('<H', p.cnt[s]) end
      parts[#parts + 1] = p.members
      redis.call('HSET', pkey(pid), pid, table.concat(parts))
    end
  end
  for name, d in pairs(CNT) do
    if d ~= 0 then redis.call('HINCRBY', KC, name, d) end
  end
end

local function minutes(t_ms)
  local m = math.floor((t_ms - EPOCH_MS) / MINUTE_MS)
  if m < 0 then return 0 end
  if m > 2147483647 then return 2147483647 end
  return m
end

local function zeros()
  local c = {}
  for s = 0, CFG.nslots - 1 do c[s] = 0 end
  return c
end

-- ---------------------------------------------------------------- setup and types
-- ARGV: fingerprint, rules (0/1), cap, nslots, limits (comma list), buckets. Returns the
-- graph's bucket count (the first worker's choice holds for good).
local function idg_setup(keys, args)
  local have = redis.call('HGET', keys[6], 'fingerprint')
  if have and have ~= args[1] then
    return redis.error_reply('DCSCONFIG expected the identity rules this graph was made with (' .. have ..
      '), got other rules (' .. args[1] .. ') - at `identity`')
  end
  if not have then
    redis.call('HSET', keys[6], 'fingerprint', args[1], 'rules', args[2], 'cap', args[3], 'nslots', args[4],
      'limits', args[5], 'nb', args[6])
  end
  return tonumber(redis.call('HGET', keys[6], 'nb'))
end

-- ARGV: keys (8 bytes each). Returns each key's node record (nil when absent); writes nothing.
local function idg_lookup(keys, args)
  local nb = redis.call('HGET', keys[6], 'nb')
  local out = {}
  if not nb then
    for i = 1, #args do out[i] = false end
    return out
  end
  NB, KN = tonumber(nb), keys[1]
  for i, key in ipairs(args) do
    out[i] = redis.call('HGET', nkey(key), key)
  end
  return out
end

-- ARGV: kind ('t' identifier types, at most 127; 's' evidence sources, at most 32767), then names;
-- returns their codes (new names get the next codes, in order)
local function idg_codes(keys, args)
  local kind = args[1]
  local cap = (kind == 't') and 127 or 32767
  local out = {}
  for i = 2, #args do
    local name = args[i]
    local code = redis.call('HGET', keys[6], kind .. ':' .. name)
    if not code then
      -- source 0 is "no source", as in the embedded graph: named sources start at 1
      local n = redis.call('HINCRBY', keys[6], 'n' .. kind, 1) - ((kind == 't') and 1 or 0)
      if n >= cap then
        redis.call('HINCRBY', keys[6], 'n' .. kind, -1)
        return redis.error_reply('DCSSCHEMA expected at most ' .. cap .. ' names of kind ' .. kind ..
          ', got one more - at `$.ids`')
      end
      redis.call('HSET', keys[6], kind .. ':' .. name, n, kind .. '#' .. n, name)
      code = n
    end
    out[i - 1] = tonumber(code)
  end
  return out
end

-- ---------------------------------------------------------------- linking
-- ARGV: time ms, source, readmit (0/1), m, then per identifier: key (8 bytes), tag, blocked (0/1),
-- type, priority, slot. Returns {person (0: none), status, absorbed persons...}.
local function idg_link(keys, args)
  local err = begin(keys)
  if err then return err end
  local t_ms, src, readmit, m = tonumber(args[1]), tonumber(args[2]), args[3] == '1', tonumber(args[4])
  local t_min = minutes(t_ms)
  local rules, cap, nslots, lim = CFG.rules, CFG.cap, CFG.nslots, CFG.lim
  local K, TAG, BLK, TYP, PRIO, SLOT, ROOT = {}, {}, {}, {}, {}, {}, {}
  local status, poisoned, order = 0, false, {}
  local dup = {}
  -- 1. look every key up; drop duplicates, blocked keys, collisions and tombstones
  for j = 1, m do
    local o = 4 + 6 * (j - 1)
    K[j], TAG[j], BLK[j] = args[o + 1], tonumber(args[o + 2]), args[o + 3] == '1'
    TYP[j], PRIO[j], SLOT[j] = tonumber(args[o + 4]), tonumber(args[o + 5]), tonumber(args[o + 6])
    local key = K[j]
    repeat
      if dup[key] then break end
      dup[key] = true
      local nd = nget(key)
      if BLK[j] then
        count('blocked', 1)
        status = bit.bor(status, S_REFUSED)
        if not nd then
          nset(key, {tag = TAG[j], pid = 0, born = next_id('born'), seen = 0, type = TYP[j], slot = SLOT[j],
                     state = BLOCKED})
          count('blocked_values', 1)
        end
        break
      end
      if nd then
        if TAG[j] ~= 0 and nd.tag ~= 0 and nd.tag ~= TAG[j] then
          count('collision', 1)
          status = bit.bor(status, S_COLLISION + S_REFUSED)
          break
        end
        local st = bit.band(nd.state, 15)
        if st == BLOCKED then
          count('blocked', 1)
          status = bit.bor(status, S_REFUSED)
          break
        end
        if st == TOMB then
          if not readmit then
            count('tombstoned', 1)
            poisoned = true
            break
          end
          ROOT[j] = -3
        else
          if TAG[j] ~= 0 and nd.tag == 0 then nd.tag = TAG[j]; nset(key, nd) end
          ROOT[j] = nd.pid
        end
      else
        ROOT[j] = -1
      end
      -- 2. keep usable keys ordered by type priority (stable): the first is the anchor
      local pj = rules and PRIO[j] or 0
      local z = #order + 1
      while z > 1 and (rules and PRIO[order[z - 1]] or 0) < pj do
        order[z] = order[z - 1]
        z = z - 1
      end
      order[z] = j
    until true
  end
  local kept = #order
  if poisoned then
    -- an event carrying an erased identifier links nothing and creates nothing
    count('suppressed', 1)
    status = bit.bor(status, S_SUPPRESSED)
    for z = 1, kept do
      local r = ROOT[order[z]]
      if r > 0 then finish(); return {r, status} end
    end
    count('anonymous', 1)
    finish()
    return {0, bit.bor(status, S_ANONYMOUS)}
  end
  if kept == 0 then
    count('anonymous', 1)
    finish()
    return {0, bit.bor(status, S_ANONYMOUS)}
  end
  count('events', 1)
  -- 3. accept components in priority order while the rules allow
  local acc_cnt, acc_size, acc_flags = zeros(), 0, 0
  local roots, side, accepted = {}, {}, {}
  for z = 1, kept do
    local j = order[z]
    local r = ROOT[j]
    repeat
      local c_size, c_flags, p = 1, 0, nil
      if r > 0 then
        if side[r] then accepted[j] = true; break end
        p = pget(r)
        c_size, c_flags = p.size, p.flags
      end
      if z > 1 then
        local reason = nil
        if rules then
          if cap > 0 and acc_size + c_size > cap then
            reason = 'size_cap'
          elseif p then
            for s = 0, nslots - 1 do
              if acc_cnt[s] + p.cnt[s] > lim[s] then
                reason = (lim[s] == 1) and 'unique' or 'limit'
                break
              end
            end
          elseif SLOT[j] >= 0 and acc_cnt[SLOT[j]] + 1 > lim[SLOT[j]] then
            reason = (lim[SLOT[j]] == 1) and 'unique' or 'limit'
          end
        end
        if not reason and bit.band(acc_flags, ROW_DNL) ~= 0 and bit.band(c_flags, ROW_DNL) ~= 0 then
          if dnl_between(members_of(p), side) then reason = 'do_not_link' end
        end
        if reason then
          count(reason, 1)
          status = bit.bor(status, S_REFUSED)
          break
        end
      end
      accepted[j] = true
      acc_size = acc_size + c_size
      acc_flags = bit.bor(acc_flags, c_flags)
      if p then
        for s = 0, nslots - 1 do acc_cnt[s] = acc_cnt[s] + p.cnt[s] end
        roots[#roots + 1] = r
        side[r] = true
      elseif SLOT[j] >= 0 then
        acc_cnt[SLOT[j]] = acc_cnt[SLOT[j]] + 1
      end
    until true
  end
  -- 4. survivor: the largest accepted person (ties: the lowest id, the oldest)
  local survivor = 0
  for _, r in ipairs(roots) do
    if survivor == 0 then
      survivor = r
    else
      local sr, sb = PC[r].size, PC[survivor].size
      if sr > sb or (sr == sb and r < survivor) then survivor = r end
    end
  end
  if survivor == 0 then
    survivor = next_id('pid')
    status = bit.bor(status, S_NEW)
    count('profiles', 1)
  end
  -- 5. insert accepted new identifiers (and revive readmitted tombstones); absorb the others
  local fresh, new_members, absorbed = {}, {}, {}
  local unions = -1
  for z = 1, kept do
    local j = order[z]
    if accepted[j] and ROOT[j] < 0 then
      local key = K[j]
      local nd = nget(key)
      if ROOT[j] == -3 then
        count('readmitted', 1)
        count('tombstones', -1)
      else
        nd = {tag = TAG[j], born = next_id('born')}
      end
      nd.pid, nd.seen, nd.type, nd.slot, nd.state = survivor, 0, TYP[j], SLOT[j], LIVE
      nset(key, nd)
      count('identifiers', 1)
      fresh[j] = true
      new_members[#new_members + 1] = key
      unions = unions + 1
    end
  end
  local sp = PC[survivor]
  local parts = {sp and sp.members or ''}
  for _, r in ipairs(roots) do
    unions = unions + 1
    if r ~= survivor then
      absorbed[#absorbed + 1] = r
      local p = PC[r]
      parts[#parts + 1] = p.members
      for _, key in ipairs(members_of(p)) do
        local nd = nget(key)
        nd.pid = survivor
        nset(key, nd)
      end
      pdel(r)
    end
  end
  count('merges', unions)
  count('profiles', -#absorbed)
  parts[#parts + 1] = table.concat(new_members)
  pset(survivor, {size = acc_size, flags = acc_flags, cnt = acc_cnt, members = table.concat(parts)})
  -- 6. evidence: the anchor linked to every other stored identifier of the event (once), in the
  -- order the links were decided, so replaying the evidence decides them the same way
  local ja = order[1]
  local an = K[ja]
  for z = 1, kept do
    local j = order[z]
    local nd = nget(K[j])
    if nd and bit.band(nd.state, 15) == LIVE then
      if t_min > nd.seen then nd.seen = t_min; nset(K[j], nd) end
      if K[j] ~= an and (fresh[j] or fresh[ja] or not has_edge(an, K[j])) then
        add_edge(an, K[j], t_ms, src)
      end
    end
  end
  finish()
  local out = {survivor, status}
  for _, r in ipairs(absorbed) do out[#out + 1] = r end
  return out
end

redis.register_function('dcs1_idg_setup', idg_setup)
redis.register_function('dcs1_idg_codes', idg_codes)
redis.register_function('dcs1_idg_link', idg_link)
redis.register_function{function_name='dcs1_idg_lookup', callback=idg_lookup, flags={'no-writes'}}
"""
