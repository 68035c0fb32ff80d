; Inno Setup script: LeanCoder for Windows, installed per user (no administrator rights needed).
;
; Build (after the PyInstaller bundle in dist\LeanCoder and the icons in build\icons exist, and
; the runtimes were collected with packaging\windows\collect_runtime.sh build/vcruntime):
;   iscc /DAppVersion=0.1.0 /DRuntimeDir=..\..\build\vcruntime packaging\windows\leancoder.iss
; Output: dist\LeanCoder-<version>-Setup.exe
;
; Silent install and uninstall (what CI does):
;   LeanCoder-<version>-Setup.exe /VERYSILENT /SUPPRESSMSGBOXES /CURRENTUSER
;   "%LOCALAPPDATA%\Programs\LeanCoder\unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef DistDir
  #define DistDir "..\..\dist\LeanCoder"
#endif
#ifndef RuntimeDir
  #define RuntimeDir "..\..\build\vcruntime"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\leancoder.ico"
#endif

[Setup]
; A fixed AppId keeps upgrades and the uninstaller tied to one installation.
AppId={{6F1B2C1E-3D7A-4E8B-9C55-0B6B2D7C4A11}
AppName=LeanCoder
AppVersion={#AppVersion}
AppVerName=LeanCoder {#AppVersion}
AppPublisher=LeanCoder
AppComments=Private, local AI coding. No network connection unless you start a download.
; Per-user: {autopf} is %LOCALAPPDATA%\Programs when the install runs without elevation.
PrivilegesRequired=lowest
DefaultDirName={autopf}\LeanCoder
DefaultGroupName=LeanCoder
DisableProgramGroupPage=yes
UsePreviousAppDir=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=LeanCoder-{#AppVersion}-Setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\LeanCoder.exe
UninstallDisplayName=LeanCoder
; The model weights hardly compress; lzma2 still shrinks Python and Qt.
Compression=lzma2/normal
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"

[Files]
; The PyInstaller bundle: LeanCoder.exe (window), leancoder-cli.exe (console) and _internal\.
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
; The OpenMP runtime llama.cpp's CPU backend is linked against, and the Visual C++ runtime, beside
; the executables (the first place Windows looks for a DLL). Missing files fail the build.
Source: "{#RuntimeDir}\vcomp140.dll"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#RuntimeDir}\vcruntime140.dll"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#RuntimeDir}\vcruntime140_1.dll"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#RuntimeDir}\msvcp140.dll"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#RuntimeDir}\msvcp140_1.dll"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#RuntimeDir}\msvcp140_2.dll"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\LeanCoder"; Filename: "{app}\LeanCoder.exe"; WorkingDir: "{app}"
Name: "{autodesktop}\LeanCoder"; Filename: "{app}\LeanCoder.exe"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\LeanCoder.exe"; Description: "{cm:LaunchProgram,LeanCoder}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Files the app may leave in its own folder (none expected); the user's chats and settings live in
; %LOCALAPPDATA%\LeanCoder and are kept.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
